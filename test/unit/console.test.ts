/**
 * The console's server-side pieces that need no browser: the content-hashed
 * asset set (what is served, what is left out, when the build is missing),
 * asset serving over a real HTTP server (compression, caching, 304, 404,
 * methods), and the Helm command's shell quoting.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { loadConsoleAssets, vendorFiles, type ConsoleAssets } from '../../proxy/console/assets.js';
import { serveAsset } from '../../proxy/console/static.js';
import { agentHelmCommand } from '../../proxy/clusters/helm-command.js';

const requireTest = createRequire(import.meta.url);

function uiDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'kg-ui-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('console assets', () => {
  test('modules and the stylesheet, under a version that changes with any byte', () => {
    const a = uiDir({
      'app.js': "import './views/x.js';\n//# sourceMappingURL=app.js.map\n",
      'views/x.js': 'export const x = 1;\n',
      'view.js': 'export {};\n',
      'app.js.map': '{}',
    });
    const b = uiDir({
      'app.js': "import './views/x.js';\n",
      'views/x.js': 'export const x = 2;\n',
    });
    try {
      const x = loadConsoleAssets(a);
      assert.equal(x.missing, undefined);
      assert.deepEqual([...x.files.keys()].sort(), [
        'app.js',
        'console.css',
        'vendor/addon-fit.js',
        'vendor/addon-search.js',
        'vendor/xterm.css',
        'vendor/xterm.js',
        'views/x.js',
      ]);
      assert.deepEqual(x.vendorMissing, []);
      assert.equal(x.script, `/console/assets/${x.version}/app.js`);
      assert.deepEqual(x.modules.sort(), [x.script, `${x.base}views/x.js`].sort());
      assert.doesNotMatch(x.files.get('app.js')!.body.toString(), /sourceMappingURL/);
      assert.match(x.version, /^[0-9a-f]{16}$/);
      assert.notEqual(loadConsoleAssets(b).version, x.version);
      assert.equal(loadConsoleAssets(a).version, x.version, 'the same build, the same version');
    } finally {
      rmSync(a, { recursive: true });
      rmSync(b, { recursive: true });
    }
  });

  test('only what the shell imports statically is preloaded; views loaded with import() are not', () => {
    const dir = uiDir({
      'app.js':
        "import { a } from './a.js';\nimport './side.js';\nconst v = () => import('./views/v.js');\nexport { b } from './b.js';\n",
      'a.js': "import { c } from './lib/c.js';\nexport const a = 1;\n",
      'lib/c.js': "import { a } from '../a.js';\nexport const c = 1;\n",
      'b.js': 'export const b = 1;\n',
      'side.js': 'globalThis.x = 1;\n',
      'views/v.js': "import { c } from '../lib/c.js';\nimport { w } from './w.js';\n",
      'views/w.js': 'export const w = 1;\n',
    });
    try {
      const x = loadConsoleAssets(dir);
      assert.deepEqual(x.modules.map((m) => m.slice(x.base.length)).sort(), [
        'a.js',
        'app.js',
        'b.js',
        'lib/c.js',
        'side.js',
      ]);
      assert.ok(x.files.has('views/v.js') && x.files.has('views/w.js'), 'views are still served');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('a missing build is reported, not thrown', () => {
    const x = loadConsoleAssets(join(tmpdir(), 'kg-no-such-ui'));
    assert.match(x.missing ?? '', /not built.*make build/);
    assert.ok(x.files.has('console.css'), 'the sign-in page keeps its stylesheet');
  });
});

describe('the vendor files (xterm.js)', () => {
  test('exactly the listed files, as the packages publish them, licence kept, no source map', () => {
    const dir = uiDir({ 'app.js': 'export const a = 1;\n' });
    try {
      const x = loadConsoleAssets(dir);
      for (const v of vendorFiles) {
        const a = x.files.get(v.name);
        assert.ok(a, v.name);
        assert.equal(a.type, v.type);
        const published = readFileSync(requireTest.resolve(v.from), 'utf8');
        assert.equal(
          a.body.toString(),
          published.replace(/^\/\/# sourceMappingURL=.*$/m, ''),
          `${v.name} is ${v.from} unchanged`,
        );
        assert.doesNotMatch(a.body.toString(), /sourceMappingURL/);
        assert.match(a.body.toString().slice(0, 400), /@license MIT|MIT License/, v.name);
        // A browser module the console imports by URL: it must not import anything itself.
        if (v.name.endsWith('.js'))
          assert.doesNotMatch(a.body.toString(), /^\s*import[\s{*'"]|[;}]import[\s{*'"]/m);
      }
      assert.match(
        x.files.get('vendor/xterm.js')!.body.toString(),
        /export\s*\{[^}]*as Terminal\}/,
      );
      assert.ok(
        x.modules.every((m) => !m.includes('/vendor/')),
        'xterm is not preloaded by the shell',
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('serving assets', () => {
  let server: Server;
  let port: number;
  let assets: ConsoleAssets;
  let dir: string;
  const get = (
    path: string,
    headers: Record<string, string> = {},
    method = 'GET',
  ): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = request({ port, path, method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      });
      req.on('error', reject);
      req.end();
    });

  before(async () => {
    dir = uiDir({ 'app.js': 'console.log(1);\n'.repeat(50) });
    assets = loadConsoleAssets(dir);
    server = createServer((req, res) => {
      if (!serveAsset(assets, req, res)) {
        res.writeHead(418);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true });
  });

  test('brotli, gzip or identity as asked; immutable; nosniff; 304 on a matching ETag', async () => {
    const original = assets.files.get('app.js')!.body;
    const br = await get(assets.script, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(br.status, 200);
    assert.equal(br.headers['content-encoding'], 'br');
    assert.deepEqual(brotliDecompressSync(br.body), original);
    assert.ok(br.body.length < original.length);
    assert.equal(br.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(br.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(br.headers['x-content-type-options'], 'nosniff');
    assert.equal(br.headers.vary, 'accept-encoding');
    const gz = await get(assets.script, { 'accept-encoding': 'gzip' });
    assert.deepEqual(gunzipSync(gz.body), original);
    const plain = await get(assets.script);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.deepEqual(plain.body, original);
    const again = await get(assets.script, {
      'accept-encoding': 'br',
      'if-none-match': String(br.headers.etag),
    });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    assert.equal((await get(assets.style)).headers['content-type'], 'text/css; charset=utf-8');
  });

  test('another version, an unknown file, traversal, other methods; other paths are not ours', async () => {
    assert.equal((await get('/console/assets/0123456789abcdef/app.js')).status, 404);
    assert.equal((await get(`${assets.base}nope.js`)).status, 404);
    assert.equal((await get(`${assets.base}../../../etc/passwd`)).status, 404);
    assert.equal((await get(`${assets.base}%2e%2e/app.js`)).status, 404);
    const post = await get(assets.script, {}, 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    const head = await get(assets.script, {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal((await get('/console/tokens')).status, 418);
    assert.equal((await get('/')).status, 418);
  });

  test('the vendor files are served as the console files are; nothing else of node_modules is', async () => {
    const xterm = await get(`${assets.base}vendor/xterm.js`, { 'accept-encoding': 'br' });
    assert.equal(xterm.status, 200);
    assert.equal(xterm.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(xterm.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.match(String(xterm.headers.etag), new RegExp(`^"${assets.version}-br"$`));
    assert.deepEqual(brotliDecompressSync(xterm.body), assets.files.get('vendor/xterm.js')!.body);
    const css = await get(`${assets.base}vendor/xterm.css`);
    assert.equal(css.status, 200);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    for (const path of [
      'vendor/xterm.mjs',
      'vendor/xterm.js.map',
      'vendor/',
      'vendor',
      'vendor/package.json',
      'vendor/../vendor/xterm.js',
      'vendor/./xterm.js',
      'vendor//xterm.js',
      'vendor%2fxterm.js',
      'vendor/xterm.js%00',
      'VENDOR/xterm.js',
      'vendor\\xterm.js',
      '@xterm/xterm/lib/xterm.mjs',
      '@xterm/xterm/package.json',
      'node_modules/@xterm/xterm/lib/xterm.mjs',
      '../../../node_modules/@xterm/xterm/lib/xterm.mjs',
      'vendor/../../../../node_modules/@xterm/xterm/package.json',
      '%2e%2e/%2e%2e/node_modules/@xterm/xterm/LICENSE',
      'vendor/%2e%2e%2f%2e%2e%2fpackage.json',
    ]) {
      const r = await get(assets.base + path);
      assert.equal(r.status, 404, path);
      assert.doesNotMatch(r.body.toString(), /xterm|license|"name"/i, path);
    }
  });
});

describe('the agent Helm command', () => {
  test('every value is shell-quoted: the shell sees exactly the values', () => {
    const nasty = "x'; rm -rf / #$(id)`id`";
    const cmd = agentHelmCommand({
      cluster: 'eu-1',
      tunnelAddress: 'kg.example.com:8444',
      token: nasty,
      caFile: 'kubegate-proxy-ca.crt',
    });
    assert.match(cmd, /^helm install kubegate-agent helm\/kubegate-agent -n kubegate-system /);
    // Let a real shell split it: the token arrives as one argument, unchanged.
    const argv = JSON.parse(
      execFileSync(
        'sh',
        ['-c', `set -- ${cmd}; node -e 'console.log(JSON.stringify(process.argv.slice(1)))' "$@"`],
        {
          encoding: 'utf8',
        },
      ),
    ) as string[];
    assert.ok(argv.includes(`bootstrap.token=${nasty}`), argv.join(' | '));
    assert.ok(argv.includes('cluster=eu-1'));
    assert.ok(argv.includes('tunnelAddress=kg.example.com:8444'));
    assert.ok(argv.includes('bootstrap.proxyCa=kubegate-proxy-ca.crt'));
  });
});
