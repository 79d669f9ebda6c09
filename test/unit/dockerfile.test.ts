/**
 * The image, checked statically: Docker cannot run on these machines, so this
 * parses the Dockerfile (multi-stage, production dependencies only, non-root,
 * nothing writable needed) and checks that the compiled programs the image
 * ships import only production dependencies. It does not build the image;
 * docs/operations.md says how to, and what to check on the result.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '../support/repo.js';

interface Stage {
  from: string;
  name?: string;
  instructions: { op: string; args: string }[];
}

/** Dockerfile → stages; continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    const args = m[2]!;
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      assert.ok(f, `FROM line: ${line}`);
      stages.push({ from: f[1]!, name: f[2], instructions: [] });
    } else if (stages.length) {
      stages[stages.length - 1]!.instructions.push({ op, args });
    }
  }
  return stages;
}

const dockerfile = () => readFileSync(join(repoRoot(), 'Dockerfile'), 'utf8');

test('the Dockerfile is multi-stage: build, production deps, runtime', () => {
  const stages = parseDockerfile(dockerfile());
  assert.ok(stages.length >= 3, `${stages.length} stages`);
  const names = stages.map((s) => s.name);
  assert.deepEqual(names, ['build', 'deps', 'runtime']);
  const runs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
  assert.ok(
    runs(stages[0]!).some((r) => /tsc -p tsconfig\.json/.test(r)),
    'build compiles',
  );
  assert.ok(
    runs(stages[1]!).some((r) => /npm ci\b.*--omit=dev/.test(r)),
    'deps installs production dependencies only',
  );
  assert.ok(
    runs(stages[1]!).every((r) => !/npm (i|install)\b/.test(r)),
    'npm ci, never npm install',
  );
});

test('the runtime stage is non-root, copies only what it needs, runs kubegate', () => {
  const runtime = parseDockerfile(dockerfile()).at(-1)!;
  const users = runtime.instructions.filter((i) => i.op === 'USER');
  assert.equal(users.length, 1, 'one USER in the runtime stage');
  const user = users[0]!.args.split(':')[0]!;
  assert.ok(/^[0-9]+$/.test(user), 'numeric UID, so runAsNonRoot can verify it');
  assert.notEqual(Number(user), 0, 'not root');
  assert.equal(Number(user), 65532, 'the UID the bootstrap YAML and charts run as');
  assert.equal(runtime.instructions.filter((i) => i.op === 'RUN').length, 0, 'no RUN: no shell');
  const copies = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => i.args);
  for (const c of copies) {
    assert.ok(!/\s\.\s+\.?\/?$|^\.\s/.test(c), `no COPY of the whole context: ${c}`);
    assert.match(c, /--chown=0:0/, `code is owned by root, not by the runtime user: ${c}`);
  }
  const from = (stage: string) => copies.filter((c) => c.includes(`--from=${stage}`));
  assert.ok(
    from('deps').some((c) => c.includes('node_modules')),
    'node_modules from deps',
  );
  assert.ok(!from('build').some((c) => c.includes('node_modules')), 'no dev node_modules');
  for (const need of [
    'package.json',
    'bin/kubegate.js',
    'migrations',
    'dist/proxy',
    'dist/agent',
    'dist/common',
  ])
    assert.ok(
      copies.some((c) => c.includes(need)),
      `copies ${need}`,
    );
  const entry = runtime.instructions.find((i) => i.op === 'ENTRYPOINT');
  assert.match(entry?.args ?? '', /bin\/kubegate\.js/);
});

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return jsFiles(p);
    return p.endsWith('.js') ? [p] : [];
  });
}

test('the programs in the image import production dependencies only', () => {
  const root = repoRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const allowed = new Set([...Object.keys(pkg.dependencies)]);
  const builtins = new Set(builtinModules);
  const specifier = /(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g;
  const offenders: string[] = [];
  const seen = new Set<string>();
  let files = 0;
  for (const dir of ['common', 'proxy', 'agent']) {
    for (const file of jsFiles(join(root, 'dist', dir))) {
      files++;
      for (const m of readFileSync(file, 'utf8').matchAll(specifier)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) {
          // Relative imports must stay inside what the image ships (no dist/test).
          if (/\/test\//.test(new URL(spec, `file://${file}`).pathname))
            offenders.push(`${file}: ${spec}`);
          continue;
        }
        if (spec.startsWith('node:') || builtins.has(spec)) continue;
        const name = spec.startsWith('@')
          ? spec.split('/').slice(0, 2).join('/')
          : spec.split('/')[0]!;
        seen.add(name);
        if (!allowed.has(name)) offenders.push(`${file}: ${spec}`);
      }
    }
  }
  assert.ok(files > 20, `scanned ${files} compiled files (run the build first)`);
  for (const dep of ['pg', 'prom-client', 'undici'])
    assert.ok(seen.has(dep), `saw ${dep} imported`);
  assert.deepEqual(offenders, [], 'imports outside "dependencies" (not installed in the image)');
});
