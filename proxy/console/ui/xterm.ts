/**
 * xterm.js in the console: the terminal emulator of the recording player and
 * the browser terminal, loaded when a view first needs it (not with the
 * shell: it is 340 KB). The proxy serves xterm's published ES modules and
 * stylesheet beside the console's own under `vendor/`
 * (proxy/console/assets.ts); this module imports them by URL relative to
 * itself, so they come from the same content-addressed directory.
 *
 * The Content-Security-Policy allows stylesheets only as files
 * (`style-src 'self'`, no inline `<style>`). xterm's DOM renderer writes CSS
 * it computes at run time (cell size, theme colours, scrollbar colours) into
 * `<style>` elements it creates, and colours a cell in 24-bit colour with
 * `span.setAttribute('style', …)`; under the policy the browser drops both
 * and reports a violation each time. A hash cannot name text computed from
 * the font's measured size or a recording's colours, and a nonce would
 * loosen the policy for every view. Instead, once xterm is loaded:
 *
 * - `document.createElement('style')` gives a stand-in element whose text
 *   goes into a constructed stylesheet (the CSS object model, which the
 *   policy does not govern, as it does not govern `element.style`), adopted
 *   by the document while the element is in it;
 * - a span's `setAttribute('style', …)` writes the same declarations through
 *   `element.style.cssText` (the CSS object model again).
 *
 * Nothing else in the console creates `<style>` elements or sets style
 * attributes (the policy would refuse them); markup cannot reach either
 * path (Trusted Types refuse HTML strings), and every other tag and
 * attribute is handled as before.
 */
import type { ITerminalOptions, Terminal } from '@xterm/xterm';
import type { FitAddon } from '@xterm/addon-fit';
import type { SearchAddon } from '@xterm/addon-search';

export interface Xterm {
  Terminal: typeof Terminal;
  FitAddon: typeof FitAddon;
  SearchAddon: typeof SearchAddon;
}

export type { ITerminalOptions, Terminal, FitAddon, SearchAddon };

const styleTag = 'kg-xterm-style';

/** The stand-in for a `<style>` xterm creates: its text is a constructed stylesheet. */
function defineStyleElement(): void {
  if (customElements.get(styleTag)) return;
  class XtermStyle extends HTMLElement {
    readonly #sheet = new CSSStyleSheet();
    // Never any children (the text goes to the sheet): nothing to see in the page.
    #text = '';
    connectedCallback(): void {
      if (!document.adoptedStyleSheets.includes(this.#sheet))
        document.adoptedStyleSheets = [...document.adoptedStyleSheets, this.#sheet];
    }
    disconnectedCallback(): void {
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== this.#sheet);
    }
    text(): string {
      return this.#text;
    }
    setText(v: string | null): void {
      this.#text = v ?? '';
      this.#sheet.replaceSync(this.#text);
    }
  }
  // xterm sets and reads `textContent`; an accessor on this element's prototype answers.
  Object.defineProperty(XtermStyle.prototype, 'textContent', {
    get(this: XtermStyle) {
      return this.text();
    },
    set(this: XtermStyle, v: string | null) {
      this.setText(v);
    },
  });
  customElements.define(styleTag, XtermStyle);
}

let shimmed = false;

function installStyleShim(): void {
  if (shimmed) return;
  shimmed = true;
  defineStyleElement();
  const setAttribute = Element.prototype.setAttribute;
  HTMLSpanElement.prototype.setAttribute = function (this: HTMLSpanElement, name, value) {
    if (String(name).toLowerCase() === 'style') this.style.cssText = String(value);
    else setAttribute.call(this, name, value);
  };
  const create = document.createElement.bind(document);
  document.createElement = ((tag: string, options?: ElementCreationOptions) =>
    String(tag).toLowerCase() === 'style'
      ? create(styleTag)
      : create(tag, options)) as typeof document.createElement;
}

/** xterm's stylesheet, once, as a file (allowed by the policy). */
function addStylesheet(): Promise<void> {
  const href = new URL('./vendor/xterm.css', import.meta.url).href;
  if (document.querySelector(`link[rel=stylesheet][href="${href}"]`)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    link.addEventListener('load', () => resolve());
    link.addEventListener('error', () => reject(new Error('the terminal stylesheet did not load')));
    document.head.append(link);
  });
}

/** A vendor module by URL (a variable, so the compiler leaves it to the browser). */
async function vendor<T>(file: string): Promise<T> {
  const url = new URL(`./vendor/${file}`, import.meta.url).href;
  return (await import(url)) as T;
}

let loading: Promise<Xterm> | undefined;

/**
 * xterm.js and its add-ons, fetched on first call. Rejects (and the next
 * call tries again) when they cannot be fetched, e.g. after an upgrade.
 */
export function loadXterm(): Promise<Xterm> {
  loading ??= (async () => {
    installStyleShim();
    const [x, fit, search] = await Promise.all([
      vendor<{ Terminal: Xterm['Terminal'] }>('xterm.js'),
      vendor<{ FitAddon: Xterm['FitAddon'] }>('addon-fit.js'),
      vendor<{ SearchAddon: Xterm['SearchAddon'] }>('addon-search.js'),
      addStylesheet(),
    ]);
    return { Terminal: x.Terminal, FitAddon: fit.FitAddon, SearchAddon: search.SearchAddon };
  })();
  loading.catch(() => (loading = undefined));
  return loading;
}
