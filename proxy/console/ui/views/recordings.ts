/**
 * "Recordings": search the recorded exec, attach and debug sessions, and
 * watch one in a terminal emulator (xterm.js) — play, pause, seek, speed,
 * an idle limit, find a word in the output and jump to when it was shown —
 * with its metadata and a link to download the .cast.
 *
 * Listed in the navigation for admins and recording viewers; the server
 * decides at every call (anyone else gets its 403 here, and no listing).
 * The player fetches the recording with `purpose=playback`, so the audit
 * log says who played which recording; the download link is audited as a
 * download.
 */
import type { RecordingView } from '../wire/recordings.js';
import { ApiError, fetchOk, get, query } from '../api.js';
import { field, h, replace, type Child } from '../dom.js';
import { when } from '../format.js';
import type { ViewContext } from '../view.js';
import { badge, errorNotice, pagedSearch, statusArea, table, factList } from '../widgets.js';
import {
  CastError,
  CastReader,
  clock,
  findAll,
  maxCastBytes,
  textIndex,
  type Cast,
  type Match,
} from '../cast.js';
import { Player } from '../player.js';
import { loadXterm } from '../xterm.js';

export type RecordingStatus = RecordingView['status'];

export type Recording = RecordingView;

/** The search form's fields: query name, label, and a hint where the format needs one. */
const filters: [name: string, title: string, hint?: string][] = [
  ['user', 'User'],
  ['cluster', 'Cluster'],
  ['namespace', 'Namespace'],
  ['pod', 'Pod'],
  ['container', 'Container'],
  ['command', 'Command', 'a part of the command line, e.g. psql'],
  ['status', 'Status'],
  ['from', 'From', 'a duration ago (15m, 2h, 7d) or an RFC 3339 time'],
  ['to', 'To', 'a duration ago or an RFC 3339 time'],
];
const statuses: RecordingStatus[] = ['complete', 'incomplete', 'recording', 'unrecorded'];

/** The server's refusal, said plainly (a 403 is not an error of the page). */
function refused(err: unknown): HTMLElement {
  if (err instanceof ApiError && err.status === 403)
    return h(
      'div',
      { class: 'notice error', role: 'alert' },
      h('strong', {}, 'You may not watch session recordings. '),
      err.message,
      h(
        'p',
        { class: 'hint' },
        'Recordings are for kubegate admins and the recording viewer groups (kubegate-auditors by default); ask an admin.',
      ),
    );
  return errorNotice(err);
}

function statusBadge(r: Pick<Recording, 'status'>): HTMLElement {
  const kind = { complete: 'ok', incomplete: 'warn', recording: '', unrecorded: 'bad' } as const;
  return badge(r.status === 'recording' ? 'recording now' : r.status, kind[r.status]);
}

function where(r: Recording): string {
  return `${r.cluster} / ${r.namespace} / ${r.pod}${r.container ? ` (${r.container})` : ''}`;
}

function length(r: Recording): string {
  if (!r.endedAt) return '—';
  return clock((Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000);
}

function mb(n: number): string {
  return n < 1024 * 1024 ? `${Math.ceil(n / 1024)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export async function recordingsView(ctx: ViewContext): Promise<void> {
  const id = /^\/console\/recordings\/([^/]+)\/?$/.exec(location.pathname)?.[1];
  if (id) return recordingPage(ctx, decodeURIComponent(id));
  return recordingList(ctx);
}

function control(name: string): HTMLInputElement | HTMLSelectElement {
  if (name === 'status')
    return h(
      'select',
      { name },
      ['', ...statuses].map((v) => h('option', { value: v }, v || 'any')),
    );
  return h('input', { type: 'text', name, autocomplete: 'off' });
}

async function recordingList(ctx: ViewContext): Promise<void> {
  const params = new URLSearchParams(location.search);
  const controls = new Map(filters.map(([n]) => [n, control(n)] as const));
  for (const [n, c] of controls) c.value = params.get(n) ?? '';
  const results = h('div', { 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'card', role: 'search', 'aria-label': 'Search recordings' },
    h(
      'div',
      { class: 'grid' },
      filters.map(([n, title, hint]) => field(title, controls.get(n)!, hint)),
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search')),
  );
  const values = () =>
    Object.fromEntries([...controls].map(([n, c]) => [n, c.value.trim() || undefined]));

  const run = pagedSearch<Recording>(
    results,
    { path: '/api/v1/recordings', filters: values },
    (all) =>
      table(
        'Recordings',
        [
          { title: 'Started', cell: (r) => when(r.startedAt) },
          { title: 'User', cell: (r) => r.user.name },
          { title: 'Where', cell: (r) => h('span', { class: 'mono' }, where(r)) },
          {
            title: 'Command',
            cell: (r) =>
              h('code', {}, r.kind === 'portforward' ? 'port-forward' : r.command.join(' ')),
          },
          { title: 'Length', cell: (r) => length(r) },
          {
            title: 'Status',
            cell: (r) => [statusBadge(r), r.reason ? h('div', { class: 'hint' }, r.reason) : null],
          },
          {
            title: 'Recording',
            cell: (r) =>
              h(
                'a',
                {
                  href: `/console/recordings/${encodeURIComponent(r.id)}`,
                  'aria-label': `Open the recording of ${r.user.name} in ${r.pod}, ${new Date(r.startedAt).toLocaleString()}`,
                },
                'Open',
              ),
          },
        ],
        all,
        'No recordings match these filters. Clear a filter or widen the time range.',
      ),
    (err) => {
      // Refused: the form goes too, so nothing suggests there is a listing to search.
      if (err instanceof ApiError && err.status === 403) replace(ctx.into, refused(err));
      else replace(results, errorNotice(err));
    },
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = query(values());
    history.replaceState(null, '', `/console/recordings${q}`);
    void run();
  });
  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      'Recorded exec, attach and debug sessions, newest first. Opening or downloading one is audited.',
    ),
    form,
    results,
  );
  await run();
}

function facts(r: Recording): HTMLElement {
  return factList([
    ['User', [r.user.name, h('span', { class: 'muted' }, ` (${r.user.kind})`)]],
    ['Cluster', h('code', {}, r.cluster)],
    ['Namespace', h('code', {}, r.namespace)],
    ['Pod', h('code', {}, r.pod)],
    [
      'Container',
      r.container ? h('code', {}, r.container) : h('span', { class: 'muted' }, 'default'),
    ],
    [
      'Command',
      r.kind === 'portforward' ? 'port-forward' : h('code', {}, r.command.join(' ') || '—'),
    ],
    ['Session', r.kind],
    ['Started', [when(r.startedAt), ` (${new Date(r.startedAt).toISOString()})`]],
    ['Ended', r.endedAt ? [when(r.endedAt), ` (${new Date(r.endedAt).toISOString()})`] : 'not yet'],
    ['Status', [statusBadge(r), r.reason ? ` ${r.reason}` : '']],
    ['Typed input', r.stdinRecorded ? 'recorded' : 'not recorded'],
    ['Policy', `${r.policy || 'default'} (${r.mode})`],
    ['Bytes', `${r.bytesOut} out, ${r.bytesIn} in`],
  ]);
}

async function recordingPage(ctx: ViewContext, id: string): Promise<void> {
  const api = `/api/v1/recordings/${encodeURIComponent(id)}`;
  const back = h('p', {}, h('a', { href: '/console/recordings' }, 'All recordings'));
  let r: Recording;
  try {
    r = await get<Recording>(api);
  } catch (err) {
    replace(ctx.into, back, refused(err));
    return;
  }
  document.title = `Recording of ${r.user.name} · kubegate`;
  const download = h(
    'a',
    { class: 'button quiet', href: `${api}/cast`, download: `kubegate-${r.id}.cast` },
    'Download .cast',
  );
  const stage = h('div', {});
  replace(
    ctx.into,
    back,
    h('h2', {}, 'Session of ', h('strong', {}, r.user.name), ' in ', h('code', {}, r.pod)),
    facts(r),
    h('div', { class: 'actions' }, download),
    stage,
  );
  if (r.status === 'unrecorded') {
    replace(
      stage,
      h(
        'div',
        { class: 'notice', role: 'status' },
        `This session was not recorded: ${r.reason || 'no reason given'}.`,
      ),
    );
    return;
  }
  if (r.kind === 'portforward') {
    replace(
      stage,
      h(
        'div',
        { class: 'notice', role: 'status' },
        'Port-forward sessions are recorded as metadata and byte counts only: there is nothing to play.',
      ),
    );
    return;
  }
  await playerFor(ctx, r, `${api}/cast?purpose=playback`, stage);
}

/** Fetch the recording as a stream, reading at most `maxCastBytes`. */
async function readCast(url: string, progress: (bytes: number) => void): Promise<Cast> {
  const res = await fetchOk(url);
  const reader = new CastReader();
  if (!res.body) throw new CastError('The recording could not be read.');
  const stream = res.body.getReader();
  for (;;) {
    const { done, value } = await stream.read();
    if (done) break;
    if (!reader.push(value)) {
      await stream.cancel();
      break;
    }
    progress(reader.bytes);
  }
  return reader.finish();
}

const speeds = [0.5, 1, 1.5, 2, 4, 8];
const idleCaps: [string, number | null][] = [
  ['as recorded', null],
  ['0.5 s', 0.5],
  ['1 s', 1],
  ['2 s', 2],
  ['5 s', 5],
];

async function playerFor(
  ctx: ViewContext,
  r: Recording,
  url: string,
  stage: HTMLElement,
): Promise<void> {
  const loading = h('p', { class: 'muted', role: 'status' }, 'Loading the recording…');
  replace(stage, loading);
  let cast: Cast;
  let x: Awaited<ReturnType<typeof loadXterm>>;
  try {
    [cast, x] = await Promise.all([
      readCast(url, (n) => replace(loading, `Loading the recording… ${mb(n)}`)),
      loadXterm(),
    ]);
  } catch (err) {
    replace(stage, refused(err));
    return;
  }
  if (!ctx.into.isConnected) return;

  const notes: Child[] = [];
  if (cast.truncated)
    notes.push(
      `This recording is larger than the player reads (${mb(maxCastBytes)}): it plays its first ${mb(cast.bytes)}. Download the .cast for all of it.`,
    );
  if (cast.skipped > 0)
    notes.push(
      `${cast.skipped} line${cast.skipped === 1 ? ' was' : 's were'} not a recording event and ${cast.skipped === 1 ? 'is' : 'are'} left out.`,
    );
  if (r.status === 'incomplete')
    notes.push(
      `The recording is incomplete: ${r.reason || 'no reason given'}. It plays what was stored.`,
    );
  if (r.status === 'recording')
    notes.push('The session is still running: this plays what was stored when the page loaded.');

  const screenEl = h('div', {
    class: 'screen',
    tabindex: '0',
    role: 'region',
    'aria-label': 'Terminal: the recorded output (space: play or pause; arrows: 5 s back or on)',
  });
  const term = new x.Terminal({
    cols: cast.header.width,
    rows: cast.header.height,
    disableStdin: true,
    cursorBlink: false,
    scrollback: 5000,
    fontSize: 14,
    // A link in a recording is shown, never followed (xterm would offer to open it).
    linkHandler: { activate: () => undefined },
  });
  const search = new x.SearchAddon();
  term.loadAddon(search);

  const idleCap = cast.header.idleTimeLimit ?? 2;
  const player = new Player(cast, term, idleCap);
  const live = statusArea();
  const playButton = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Play');
  const slider = h('input', {
    type: 'range',
    min: '0',
    max: player.duration.toFixed(3),
    step: 'any',
    value: '0',
    'aria-label': 'Position',
  });
  const time = h('span', { class: 'mono', role: 'timer', 'aria-label': 'Elapsed' }, '');
  const speed = h(
    'select',
    { name: 'speed' },
    speeds.map((s) => h('option', { value: String(s), selected: s === 1 }, `${s}×`)),
  );
  const idle = h(
    'select',
    { name: 'idle' },
    idleCaps.map(([label, v]) =>
      h('option', { value: v === null ? '' : String(v), selected: v === idleCap }, label),
    ),
  );
  if (!idleCaps.some(([, v]) => v === idleCap))
    idle.append(h('option', { value: String(idleCap), selected: true }, `${idleCap} s`));

  let dragging = false;
  let wasPlaying = false;
  player.onChange = () => {
    if (wasPlaying && !player.playing && player.position >= player.duration)
      live.show('Played to the end');
    wasPlaying = player.playing;
    playButton.textContent = player.playing ? 'Pause' : 'Play';
    playButton.setAttribute('aria-pressed', String(player.playing));
    // Milliseconds: a float's last digits would differ from what the browser keeps of them.
    slider.max = player.duration.toFixed(3);
    if (!dragging) slider.value = player.position.toFixed(3);
    time.textContent = `${clock(player.position)} / ${clock(player.duration)}`;
  };
  player.onChange();

  const toggle = () => {
    if (player.playing) player.pause();
    else player.play();
    live.show(player.playing ? 'Playing' : `Paused at ${clock(player.position)}`);
  };
  playButton.addEventListener('click', toggle);
  slider.addEventListener('input', () => {
    dragging = true;
    void player.seek(Number(slider.value)).finally(() => (dragging = false));
  });
  speed.addEventListener('change', () => player.setSpeed(Number(speed.value)));
  idle.addEventListener('change', () => player.setIdleCap(idle.value ? Number(idle.value) : null));
  screenEl.addEventListener('keydown', (ev) => {
    if (ev.key === ' ') toggle();
    else if (ev.key === 'ArrowLeft') void player.seek(player.position - 5);
    else if (ev.key === 'ArrowRight') void player.seek(player.position + 5);
    else return;
    ev.preventDefault();
  });

  // Find: every place the text was shown, in order; each jumps to when it appeared.
  const index = textIndex(cast.events);
  const findInput = h('input', { type: 'search', name: 'find', autocomplete: 'off' });
  const found = h('span', { role: 'status', 'aria-live': 'polite' });
  let matches: Match[] = [];
  let current = -1;
  let asked = '';
  const prev = h('button', { type: 'button', class: 'quiet', disabled: true }, 'Previous');
  const next = h('button', { type: 'button', class: 'quiet', disabled: true }, 'Next');
  const show = async (i: number) => {
    current = i;
    const m = matches[i]!;
    const at = player.timeOf(m.event);
    player.pause();
    await player.seek(at);
    search.findPrevious(asked, { caseSensitive: false });
    found.textContent = `Match ${i + 1} of ${matches.length}${matches.length >= 1000 ? '+' : ''}, shown at ${clock(at)}`;
    prev.disabled = i <= 0;
    next.disabled = i >= matches.length - 1;
  };
  const findForm = h(
    'form',
    { class: 'actions', role: 'search', 'aria-label': 'Search the output' },
    field('Find in the output', findInput),
    h('button', { type: 'submit' }, 'Find'),
    prev,
    next,
    found,
  );
  findForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    asked = findInput.value;
    matches = findAll(index, asked);
    current = -1;
    if (matches.length === 0) {
      prev.disabled = next.disabled = true;
      search.clearDecorations();
      term.clearSelection();
      found.textContent = asked ? `"${asked}" is not in the output.` : '';
      return;
    }
    void show(0);
  });
  prev.addEventListener('click', () => void (current > 0 && show(current - 1)));
  next.addEventListener('click', () => void (current < matches.length - 1 && show(current + 1)));

  replace(
    stage,
    notes.length
      ? h(
          'div',
          { class: 'notice', role: 'status' },
          notes.map((n) => h('p', {}, n)),
        )
      : null,
    h(
      'section',
      { class: 'player card', 'aria-label': 'Player' },
      h(
        'div',
        { class: 'actions' },
        playButton,
        h('div', { class: 'seek' }, slider),
        time,
        field('Speed', speed),
        field('Idle time limit', idle),
      ),
      live.el,
      screenEl,
      findForm,
      cast.events.length === 0 ? h('p', { class: 'muted' }, 'This recording has no events.') : null,
    ),
  );
  term.open(screenEl);
  // Leaving the page (another view replaced this one): stop and let the emulator go.
  const watch = setInterval(() => {
    if (ctx.into.isConnected && stage.isConnected) return;
    clearInterval(watch);
    player.stop();
    term.dispose();
  }, 1000);
}
