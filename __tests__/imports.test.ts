/**
 * The rooms of src/ and the imports between them (docs/architecture.md): no import cycle between files,
 * and no import upward — only the entry points (cli/, actions/, index.ts) import cli/ or actions/, pure
 * rooms import no edge, deploy/ does not import the fleet-wide room above it, nothing imports testing/.
 * The graph is read with the TypeScript compiler's import scanner (type-only imports count: a cycle of
 * types is still two files that cannot be read one before the other).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

type Graph = Map<string, string[]>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const isFile = (p: string) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

/** Each file of `root` (relative path) → the files of `root` it imports (relative paths). */
function importGraph(root: string): Graph {
  const graph: Graph = new Map();
  for (const file of sourceFiles(root)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const deps = importedFiles
      .map((i) => i.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => {
        const base = resolve(dirname(file), spec.replace(/\.js$/, ''));
        const found = [`${base}.ts`, join(base, 'index.ts')].find(isFile);
        if (!found) throw new Error(`${relative(root, file)}: cannot resolve ${spec}`);
        return relative(root, found);
      });
    graph.set(relative(root, file), [...new Set(deps)]);
  }
  return graph;
}

interface Cycle {
  /** A path from a file back to itself. */
  path: string[];
  /** Every file of the strongly connected set it belongs to, sorted. */
  files: string[];
}

/** Every cycle, one per strongly connected set of files. */
function cycles(graph: Graph): Cycle[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: Cycle[] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const set = new Set<string>();
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      set.add(w);
    } while (w !== v);
    if (set.size > 1 || graph.get(v)?.includes(v))
      found.push({ path: roundTrip(graph, v, set), files: [...set].sort() });
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** A cycle in words: the path round it, and every file tangled with it when there are more. */
function describeCycle({ path, files }: Cycle): string {
  const others = files.filter((f) => !path.includes(f));
  return `${path.join(' → ')}${others.length ? ` (tangled with it: ${others.join(', ')})` : ''}`;
}

/** The shortest path from `start` back to itself within `set` (breadth first). */
function roundTrip(graph: Graph, start: string, set: Set<string>): string[] {
  const from = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!set.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(from.get(path[0]!)!);
        return [...path, start];
      }
      if (!from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** A file's room: its top folder under src/, or the file itself for a file at the top. */
const room = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file);

const ENTRIES = ['cli', 'actions', 'index.ts'];
const EDGES = ['ssh', 'http', 'sandbox', 'testing', 'cli', 'actions', 'settings.ts', 'index.ts'];
const PURE = [
  'registry',
  'plan',
  'report',
  'remote',
  'deploy',
  'health',
  'analysis',
  'proxy',
  'fleet',
  'ports.ts',
];

/** Why an import from one room into another is upward, or undefined when it is allowed. */
function forbidden(from: string, to: string): string | undefined {
  if (from === to) return undefined;
  if ((to === 'cli' || to === 'actions') && !ENTRIES.includes(from))
    return `only the entry points (${ENTRIES.join(', ')}) import ${to}/`;
  if ((from === 'cli' && to === 'actions') || (from === 'actions' && to === 'cli'))
    return 'the CLI and the actions are two entry points side by side: what both need belongs below them';
  if (to === 'testing') return 'src/testing is for tests and benchmarks, never bundled';
  if (PURE.includes(from) && EDGES.includes(to)) return `${from} is pure: it imports no edge (${to})`;
  if (from === 'deploy' && to === 'fleet')
    return 'fleet/ (read commands, the per-server loop) builds on deploy/';
  return undefined;
}

function upwardImports(graph: Graph): string[] {
  return [...graph].flatMap(([file, deps]) =>
    deps.flatMap((dep) => {
      const why = forbidden(room(file), room(dep));
      return why ? [`${file} imports ${dep}: ${why}`] : [];
    }),
  );
}

const SRC = resolve('src'); // jest runs from the repository's root

describe('imports in src/', () => {
  const graph = importGraph(SRC);

  test('no file imports itself back through others (no import cycle)', () => {
    expect(cycles(graph).map(describeCycle)).toEqual([]);
  });

  test('no upward import between rooms', () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  test('the graph is the real one: it holds the imports that are known to exist', () => {
    expect(graph.get('cli/status.ts')).toContain('fleet/read-status.ts');
    expect(graph.get('proxy/index.ts')).toEqual(
      expect.arrayContaining(['proxy/caddy.ts', 'proxy/driver.ts']),
    );
    expect(graph.get('deploy/target.ts')).toContain('ports.ts');
    expect(graph.size).toBeGreaterThan(100);
  });
});

describe('the checks find what they look for', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-imports-'));
    const files: Record<string, string> = {
      'proxy/index.ts':
        "import { caddy } from './caddy';\nimport { nginx } from './nginx';\nexport const d = [caddy, nginx];",
      'proxy/nginx.ts': "import type { Driver } from './index';\nexport const nginx = 2;",
      'proxy/caddy.ts':
        "import type { Driver } from './index';\nexport const caddy = 1;\nexport type Driver = Driver;",
      'deploy/a.ts': "export { b } from './b';",
      'deploy/b.ts': "import { c } from '../fleet/c';\nexport const b = c;",
      'fleet/c.ts': "import { a } from '../deploy/a.js';\nexport const c = a;",
      'github/report.ts': "import { core } from '../actions/log';\nexport const r = core;",
      'actions/log.ts': "import { x } from '../cli/x';\nexport const core = x;",
      'cli/x.ts': 'export const x = 1;',
      'remote/y.ts': "import { z } from '../ssh/z';\nexport const y = z;",
      'ssh/z.ts': 'export const z = 1;',
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('every cycle is reported with its files, type-only and re-exports included', () => {
    expect(cycles(importGraph(dir)).map(describeCycle)).toEqual([
      'deploy/a.ts → deploy/b.ts → fleet/c.ts → deploy/a.ts',
      'proxy/caddy.ts → proxy/index.ts → proxy/caddy.ts (tangled with it: proxy/nginx.ts)',
    ]);
  });

  test('every upward import is reported with the rule it breaks', () => {
    expect(upwardImports(importGraph(dir)).sort()).toEqual([
      'actions/log.ts imports cli/x.ts: the CLI and the actions are two entry points side by side: what both need belongs below them',
      'deploy/b.ts imports fleet/c.ts: fleet/ (read commands, the per-server loop) builds on deploy/',
      'github/report.ts imports actions/log.ts: only the entry points (cli, actions, index.ts) import actions/',
      'remote/y.ts imports ssh/z.ts: remote is pure: it imports no edge (ssh)',
    ]);
  });
});
