/**
 * The console's static files: the ES modules compiled from proxy/console/ui/
 * (its own tsconfig, lib DOM; `make build` runs it) and the stylesheet. All
 * are read once, kept in memory with their brotli and gzip forms, and served
 * under one content-addressed directory, `/console/assets/<version>/`, so a
 * browser may cache them for a year and a new build is a new URL. Relative
 * `import`s between modules stay inside that directory.
 *
 * Beside them, under `vendor/`, the browser builds of xterm.js (the terminal
 * emulator of the recording player and the browser terminal) and its fit and
 * search add-ons, with xterm's stylesheet: exactly the files listed in
 * `vendorFiles`, read from the installed packages as published (ES modules
 * with no imports of their own). Nothing else in node_modules is reachable:
 * a request names a key of the in-memory map, never a path on disk.
 *
 * A missing build is not fatal for the proxy (kubectl traffic does not need
 * the console); the console pages then answer 503 with what to run.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { consoleCss } from './style.js';

export interface Asset {
  /** Path below the version directory, e.g. `app.js`, `views/tokens.js`. */
  name: string;
  type: string;
  body: Buffer;
  br: Buffer;
  gzip: Buffer;
}

export interface ConsoleAssets {
  /** Hash of every file: the cache-busting directory name. */
  version: string;
  /** `/console/assets/<version>/` */
  base: string;
  files: ReadonlyMap<string, Asset>;
  /** The entry module and the stylesheet, as absolute URL paths. */
  script: string;
  style: string;
  /**
   * The modules the entry imports statically (its closure), for
   * `<link rel="modulepreload">`: the shell loads without an import
   * waterfall; views, loaded with `import()` when shown, are not preloaded.
   */
  modules: string[];
  /** Why the console cannot run, when the UI build is missing. */
  missing?: string;
  /**
   * Vendor files not found (a broken install): the console runs, the
   * terminal views say they cannot start.
   */
  vendorMissing: string[];
}

const uiDir = fileURLToPath(new URL('./ui/', import.meta.url));

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/**
 * Brotli's best quality costs about a second of CPU on xterm.js (340 KB) at
 * every start for 10% fewer bytes than quality 5 (20 ms): large files get 5.
 */
const bestBrotliBelow = 64 * 1024;

function asset(name: string, type: string, body: Buffer): Asset {
  const quality = body.length < bestBrotliBelow ? 11 : 5;
  return {
    name,
    type,
    body,
    br: brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: quality } }),
    gzip: gzipSync(body, { level: 9 }),
  };
}

const js = 'text/javascript; charset=utf-8';
const css = 'text/css; charset=utf-8';

/**
 * The third-party files served under `vendor/`: the asset name and the file
 * in its package. Only these; each keeps its licence header.
 */
export const vendorFiles: readonly { name: string; from: string; type: string }[] = [
  { name: 'vendor/xterm.js', from: '@xterm/xterm/lib/xterm.mjs', type: js },
  { name: 'vendor/xterm.css', from: '@xterm/xterm/css/xterm.css', type: css },
  { name: 'vendor/addon-fit.js', from: '@xterm/addon-fit/lib/addon-fit.mjs', type: js },
  { name: 'vendor/addon-search.js', from: '@xterm/addon-search/lib/addon-search.mjs', type: js },
];

const requireHere = createRequire(import.meta.url);

/** The vendor files from the installed packages; a missing one is named in `missing`. */
function loadVendor(files: Map<string, Asset>): string[] {
  const missing: string[] = [];
  for (const v of vendorFiles) {
    let text: string;
    try {
      text = readFileSync(requireHere.resolve(v.from), 'utf8');
    } catch {
      missing.push(v.from);
      continue;
    }
    // The source map is not served: no reference to it either.
    text = text.replace(/^\/\/# sourceMappingURL=.*$/m, '');
    files.set(v.name, asset(v.name, v.type, Buffer.from(text)));
  }
  return missing;
}

/** Read the compiled UI from `dir` (default: next to this module) into memory. */
export function loadConsoleAssets(dir = uiDir): ConsoleAssets {
  const files = new Map<string, Asset>();
  for (const path of walk(dir)
    .filter((p) => p.endsWith('.js'))
    .sort()) {
    const name = relative(dir, path).split(sep).join('/');
    // Source maps and the compiler's comments stay out: the browser gets the module alone.
    const text = readFileSync(path, 'utf8').replace(/^\/\/# sourceMappingURL=.*$/m, '');
    // Type-only modules compile to an empty `export {};` that no module imports.
    if (/^\s*export \{\};?\s*$/.test(text)) continue;
    files.set(name, asset(name, js, Buffer.from(text)));
  }
  files.set('console.css', asset('console.css', css, Buffer.from(consoleCss)));
  const vendorMissing = loadVendor(files);
  const h = createHash('sha256');
  for (const [name, a] of files) h.update(name).update('\0').update(a.body).update('\0');
  const version = h.digest('hex').slice(0, 16);
  const base = `/console/assets/${version}/`;
  const modules = staticClosure(files, 'app.js').map((n) => base + n);
  return {
    version,
    base,
    files,
    script: `${base}app.js`,
    style: `${base}console.css`,
    modules,
    vendorMissing,
    ...(files.has('app.js')
      ? {}
      : {
          missing: `the console UI is not built (no ${join(dir, 'app.js')}); run \`make build\``,
        }),
  };
}

/** `import … from './x.js'` and `import './x.js'`: static imports, not `import('./x.js')`. */
const staticImport = /^\s*(?:import|export)\b[^'"();]*?['"](\.{1,2}\/[^'"]+)['"]/gm;

/** The entry and every module it reaches through static imports, as asset names. */
export function staticClosure(files: ReadonlyMap<string, Asset>, entry: string): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || !files.has(name)) return;
    seen.add(name);
    const text = files.get(name)!.body.toString();
    for (const m of text.matchAll(staticImport)) {
      const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/') + 1) : '';
      visit(posix.normalize(dir + m[1]!));
    }
  };
  visit(entry);
  return [...seen];
}

let loaded: ConsoleAssets | undefined;

/** The assets of this build, loaded on first use. */
export function consoleAssets(): ConsoleAssets {
  return (loaded ??= loadConsoleAssets());
}
