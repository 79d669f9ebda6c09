/**
 * The console's one stylesheet, served as a file (the Content-Security-Policy
 * allows no inline style). Colours keep WCAG AA contrast (4.5:1 for text) on
 * both schemes; focus is always visible; motion is minimal.
 */
export const consoleCss = `
:root{--bg:#fff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--panel:#f6f8fa;--accent:#0b5cd5;--accent-fg:#fff;
--ok:#116329;--ok-bg:#dafbe1;--bad:#a40e26;--bad-bg:#ffebe9;--warn:#7d4e00;--warn-bg:#fff8c5;--focus:#0b5cd5;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9da7b3;--line:#30363d;--panel:#161b22;
--accent:#4493f8;--accent-fg:#0d1117;--ok:#56d364;--ok-bg:#12261e;--bad:#ff8182;--bad-bg:#2d1214;--warn:#e3b341;--warn-bg:#272115;--focus:#79c0ff}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:var(--bg);padding:.5rem}.skip:focus{left:.5rem}
header.top{display:flex;align-items:center;gap:1rem;padding:.6rem 1rem;border-bottom:1px solid var(--line);background:var(--panel);flex-wrap:wrap}
header.top .brand{font-weight:700;font-size:1.1rem;color:var(--fg);text-decoration:none}
header.top .who{margin-left:auto;color:var(--muted);font-size:.9rem}
.layout{display:flex;min-height:calc(100vh - 3rem)}
nav.side{width:13rem;flex:none;border-right:1px solid var(--line);padding:1rem .5rem}
nav.side h2{font-size:.75rem;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:1rem .5rem .3rem}
nav.side ul{list-style:none;margin:0;padding:0}
nav.side a{display:block;padding:.35rem .5rem;border-radius:6px;color:var(--fg);text-decoration:none}
nav.side a:hover{background:var(--panel)}
nav.side a[aria-current=page]{background:var(--accent);color:var(--accent-fg)}
main{flex:1;padding:1.2rem 1.6rem;max-width:72rem;min-width:0}
h1{font-size:1.45rem;margin:.2rem 0 1rem}h2{font-size:1.15rem;margin:1.6rem 0 .6rem}
p.lead{color:var(--muted);margin-top:-.6rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.93rem}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);background:var(--panel)}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
code{background:var(--panel);padding:.05rem .3rem;border-radius:4px}
pre{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.8rem;overflow:auto;max-height:22rem}
button,.button{display:inline-block;padding:.42rem .9rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);
color:var(--accent-fg);font:inherit;cursor:pointer;text-decoration:none;line-height:1.3}
button.quiet,.button.quiet{background:transparent;color:var(--accent)}
button.danger{background:transparent;color:var(--bad);border-color:var(--bad)}
button:disabled{opacity:.55;cursor:not-allowed}
.actions{display:flex;gap:.5rem;flex-wrap:wrap;align-items:center;margin:.6rem 0}
form.card,.card{border:1px solid var(--line);border-radius:8px;padding:1rem;margin:1rem 0;background:var(--bg)}
fieldset{border:1px solid var(--line);border-radius:6px;margin:.6rem 0;padding:.6rem .8rem}
legend{font-weight:600;padding:0 .3rem}
label{display:block;font-weight:600;margin:.5rem 0 .2rem}
label.inline{display:inline-flex;gap:.3rem;align-items:center;font-weight:400;margin-right:1rem}
input,select,textarea{font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--muted);border-radius:6px;padding:.35rem .5rem;max-width:100%}
input[type=text],input[type=search],input[type=datetime-local],textarea,select{width:28rem}
textarea{min-height:6rem;font-family:ui-monospace,monospace}
ul.plain{list-style:none;margin:0;padding:0}
.card>h2:first-child,.card>h2:first-of-type{margin-top:0}
.actions select,.actions input[type=text]{width:auto;min-width:10rem}
pre.wrap{white-space:pre-wrap;word-break:break-all}
.hint{color:var(--muted);font-size:.85rem;margin:.15rem 0 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(13rem,1fr));gap:.2rem 1rem}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;border:1px solid var(--line);background:var(--panel);margin:0 .25rem .15rem 0}
.badge.ok{color:var(--ok);background:var(--ok-bg);border-color:var(--ok)}
.badge.bad{color:var(--bad);background:var(--bad-bg);border-color:var(--bad)}
.badge.warn{color:var(--warn);background:var(--warn-bg);border-color:var(--warn)}
.notice{border-radius:6px;padding:.6rem .8rem;margin:.6rem 0;border:1px solid var(--line);background:var(--panel)}
.notice.error{color:var(--bad);background:var(--bad-bg);border-color:var(--bad)}
.notice.ok{color:var(--ok);background:var(--ok-bg);border-color:var(--ok)}
.notice ul{margin:.3rem 0 0;padding-left:1.2rem}
.empty{border:1px dashed var(--line);border-radius:8px;padding:1.2rem;color:var(--muted);text-align:center}
.muted{color:var(--muted)}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.center{max-width:30rem;margin:4rem auto;padding:0 1rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;min-width:0;overflow-wrap:anywhere}
pre.diff{padding:.5rem 0}pre.diff .line{display:block;padding:0 .8rem}
pre.diff .add{color:var(--ok);background:var(--ok-bg)}pre.diff .del{color:var(--bad);background:var(--bad-bg)}
pre.diff .head{color:var(--muted)}
.progress{font-weight:600;margin:.5rem 0 .2rem}
fieldset.selector .selector-row{margin:.3rem 0}
.terminal{height:26rem;background:#000;padding:.3rem;border-radius:6px;margin:.5rem 0}
#term-state[data-state=ended]{font-weight:600}
.player .screen{overflow:auto;background:#000;border-radius:6px;padding:.4rem;margin:.6rem 0;max-width:100%}
.player .seek{flex:1;min-width:12rem}.player .seek input{width:100%}
.player .actions label{margin:0 0 .1rem}.player .actions input[type=search]{width:16rem}
@media (max-width:50rem){.layout{display:block}nav.side{width:auto;border-right:0;border-bottom:1px solid var(--line)}
nav.side ul{display:flex;flex-wrap:wrap;gap:.2rem}input[type=text],textarea,select{width:100%}}
`.trim();
