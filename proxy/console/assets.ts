/**
 * The console's static files: the ES modules compiled from proxy/console/ui/
 * (its own tsconfig, lib DOM; `make build` runs it) and the stylesheet. All
 * are read once, kept in memory with their brotli and gzip forms, and served
 * under one content-addressed directory, `/console/assets/<version>/`, so a
 * browser may cache them for a year and a new build is a new URL. Relative
 * `import`s between modules stay inside that directory.
 *
 * A missing build is not fatal for the proxy (kubectl traffic does not need
 * the console); the console pages then answer 503 with what to run.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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
}

const uiDir = fileURLToPath(new URL('./ui/', import.meta.url));

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

function asset(name: string, type: string, body: Buffer): Asset {
  return {
    name,
    type,
    body,
    br: brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
    gzip: gzipSync(body, { level: 9 }),
  };
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
    files.set(name, asset(name, 'text/javascript; charset=utf-8', Buffer.from(text)));
  }
  files.set(
    'console.css',
    asset('console.css', 'text/css; charset=utf-8', Buffer.from(consoleCss)),
  );
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
