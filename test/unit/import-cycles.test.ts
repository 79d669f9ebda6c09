/**
 * No import cycles in proxy/, agent/ and common/ (type-only imports
 * included: a cycle of types is still two modules that cannot be read
 * apart). Reads the TypeScript sources as text and walks relative imports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { repoRoot } from '../support/repo.js';

const importFrom = /^\s*(?:import|export)\b[^;'"]*?\bfrom\s+['"](\.[^'"]+)['"]/gm;
const sideEffectImport = /^\s*import\s+['"](\.[^'"]+)['"]/gm;

/** Every .ts file below `dir` (relative to the repository), declaration files left out. */
function sources(root: string, dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(root, rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** The graph: each file and the files its relative imports name. */
export function importGraph(root: string, files: readonly string[]): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8');
    const deps: string[] = [];
    for (const re of [importFrom, sideEffectImport]) {
      for (const m of text.matchAll(re)) {
        const target = normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts');
        if (known.has(target)) deps.push(target);
      }
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Strongly connected components with more than one file, or a file importing itself. */
export function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('the cycle finder finds a cycle of two, of three, and none in a chain', () => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['a']],
    ['c', ['d']],
    ['d', ['e']],
    ['e', ['c']],
    ['f', ['g']],
    ['g', []],
  ]);
  assert.deepEqual(cycles(g), [
    ['a', 'b'],
    ['c', 'd', 'e'],
  ]);
});

test('the import matcher reads multi-line, type-only and re-export imports', () => {
  const root = repoRoot();
  const graph = importGraph(root, ['proxy/pipeline.ts', 'proxy/http/response.ts']);
  // pipeline.ts imports AnyResponse with `import type`.
  assert.ok(graph.get('proxy/pipeline.ts')!.includes('proxy/http/response.ts'));
});

test('proxy/, agent/ and common/ have no import cycles', () => {
  const root = repoRoot();
  const files = ['proxy', 'agent', 'common'].flatMap((d) => sources(root, d));
  assert.ok(files.length > 200, `read ${files.length} files`);
  const found = cycles(importGraph(root, files));
  assert.deepEqual(
    found.map((c) => c.map((f) => relative('.', f))),
    [],
    'import cycles (break each by moving the shared type or function to its own module)',
  );
});
