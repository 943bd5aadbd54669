/**
 * The command's code cache (src/cli/code-cache.ts): where it is kept and when it is refused, and the
 * built entry, dist/cli.js, run as a user runs it: twice, with a broken cache, with a linked directory.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDir, cacheFile, readCache, runOf, tidyCache, writeCache } from '../src/cli/code-cache';

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));
const temp = () => {
  const root = mkdtempSync(join(tmpdir(), 'fd-code-cache-'));
  roots.push(root);
  return root;
};
const SHA = 'ab'.repeat(32);
const asRoot = process.getuid?.() === 0;

describe('where the cache is kept', () => {
  test('$XDG_CACHE_HOME/fleet-deploy, made mode 700; else ~/.cache/fleet-deploy; none when switched off', () => {
    const root = temp();
    expect(cacheDir({ XDG_CACHE_HOME: join(root, 'xdg') })).toBeUndefined(); // it must exist
    mkdirSync(join(root, 'xdg'));
    expect(cacheDir({ XDG_CACHE_HOME: join(root, 'xdg') })).toBe(join(root, 'xdg', 'fleet-deploy'));
    expect(statSync(join(root, 'xdg', 'fleet-deploy')).mode & 0o777).toBe(0o700);
    // a relative XDG_CACHE_HOME is ignored, as the XDG spec says; ~/.cache is made when missing
    mkdirSync(join(root, 'home'));
    expect(cacheDir({ XDG_CACHE_HOME: 'rel', HOME: join(root, 'home') })).toBe(
      join(root, 'home', '.cache', 'fleet-deploy'),
    );
    expect(statSync(join(root, 'home', '.cache')).mode & 0o777).toBe(0o700);
    expect(cacheDir({ XDG_CACHE_HOME: join(root, 'xdg'), FLEET_DEPLOY_CODE_CACHE: '0' })).toBeUndefined();
  });

  (asRoot ? test : test.skip)(
    "nothing is made in a home or cache directory of someone else's (sudo keeps HOME)",
    () => {
      const root = temp();
      for (const d of ['home', 'xdg']) {
        mkdirSync(join(root, d));
        chownSync(join(root, d), 65534, 65534);
      }
      expect(cacheDir({ HOME: join(root, 'home') })).toBeUndefined();
      expect(cacheDir({ XDG_CACHE_HOME: join(root, 'xdg') })).toBeUndefined();
      expect([readdirSync(join(root, 'home')), readdirSync(join(root, 'xdg'))]).toEqual([[], []]);
    },
  );

  test("a directory that is a link, writable by others or someone else's is not used", () => {
    const root = temp();
    mkdirSync(join(root, 'elsewhere'), { mode: 0o700 });
    mkdirSync(join(root, 'read-only', 'fleet-deploy'), { recursive: true, mode: 0o500 });
    if (!asRoot) expect(cacheDir({ XDG_CACHE_HOME: join(root, 'read-only') })).toBeUndefined();
    mkdirSync(join(root, 'linked'));
    symlinkSync(join(root, 'elsewhere'), join(root, 'linked', 'fleet-deploy'));
    expect(cacheDir({ XDG_CACHE_HOME: join(root, 'linked') })).toBeUndefined();

    mkdirSync(join(root, 'open', 'fleet-deploy'), { recursive: true });
    chmodSync(join(root, 'open', 'fleet-deploy'), 0o777);
    expect(cacheDir({ XDG_CACHE_HOME: join(root, 'open') })).toBeUndefined();
    if (asRoot) {
      mkdirSync(join(root, 'theirs', 'fleet-deploy'), { recursive: true, mode: 0o700 });
      chownSync(join(root, 'theirs', 'fleet-deploy'), 65534, 65534);
      expect(cacheDir({ XDG_CACHE_HOME: join(root, 'theirs') })).toBeUndefined();
    }
  });
});

describe('a cache file', () => {
  test('named by the bundle, Node, the platform and the subcommand (a dry run apart); an odd argument is "other"', () => {
    const name = (command?: string) => cacheFile('/c', SHA, command).slice('/c/'.length);
    const node = `${process.version}-${process.platform}-${process.arch}`;
    expect(name('deploy')).toBe(`cli-${'ab'.repeat(16)}-${node}-deploy.v8`);
    for (const odd of [undefined, '--version', '../../x', 'a'.repeat(40)])
      expect(name(odd)).toBe(`cli-${'ab'.repeat(16)}-${node}-other.v8`);
    expect(() => cacheFile('/c', 'x', 'deploy')).toThrow('not a sha256');
    // a dry run is a run of its own: it compiles far less than the deploy it stands for
    expect([runOf(['deploy', '-v', 'v2']), runOf(['deploy', '--dry-run']), runOf([])]).toEqual([
      'deploy',
      'deploy-dry-run',
      undefined,
    ]);
  });

  test("read only when it is a regular file of the user's alone, never through a link", () => {
    const dir = temp();
    const file = join(dir, 'c.v8');
    writeFileSync(file, 'cached', { mode: 0o600 });
    expect(readCache(file)?.toString()).toBe('cached');
    symlinkSync(file, join(dir, 'link.v8'));
    expect(readCache(join(dir, 'link.v8'))).toBeUndefined();
    chmodSync(file, 0o666);
    expect(readCache(file)).toBeUndefined();
    if (asRoot) {
      chmodSync(file, 0o600);
      chownSync(file, 65534, 65534);
      expect(readCache(file)).toBeUndefined();
    }
    expect(readCache(join(dir, 'missing.v8'))).toBeUndefined();
  });

  test("room is made for a build's files: other builds' go, and killed writes' left-overs after an hour", () => {
    const dir = temp();
    const mine = cacheFile(dir, SHA, 'deploy');
    const old = cacheFile(dir, 'cd'.repeat(32), 'deploy');
    for (const f of [mine, old, join(dir, '.tmp-1-new'), join(dir, '.tmp-2-old'), join(dir, 'notes.txt')])
      writeFileSync(f, 'x');
    const hourAgo = new Date(Date.now() - 3_700_000);
    utimesSync(join(dir, '.tmp-2-old'), hourAgo, hourAgo);
    expect(tidyCache(dir, SHA)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['.tmp-1-new', mine.slice(dir.length + 1), 'notes.txt'].sort());
    // a build keeps 24 files at most (a mistyped subcommand is a file too)
    for (let i = 0; i < 23; i++) writeFileSync(cacheFile(dir, SHA, `c${String.fromCharCode(97 + i)}`), 'x');
    expect(tidyCache(dir, SHA)).toBe(false);
  });

  test('written whole: a new file (mode 600) renamed over the old one, nothing left beside it', () => {
    const dir = temp();
    const file = join(dir, 'c.v8');
    writeFileSync(file, 'old');
    const before = statSync(file).ino;
    writeCache(file, Buffer.from('new'));
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(statSync(file).ino).not.toBe(before);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['c.v8']);
    // a directory it cannot write to: nothing, and no error
    writeCache(join(dir, 'no', 'such', 'c.v8'), Buffer.from('x'));
    expect(readdirSync(dir)).toEqual(['c.v8']);
  });
});

describe('dist/cli.js, run as the command', () => {
  const run = (xdg: string, args = ['--version']) =>
    spawnSync(process.execPath, ['dist/cli.js', ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: join(xdg, 'home'), XDG_CACHE_HOME: xdg },
      timeout: 30_000,
    });
  const version = JSON.parse(readFileSync('package.json', 'utf8')).version as string;
  // From Node 22.8 on, Node keeps the cache itself (module.enableCompileCache), in files of its own.
  const ownCache = typeof (Module as { enableCompileCache?: unknown }).enableCompileCache !== 'function';

  (ownCache ? test : test.skip)(
    'the first run writes its cache; the next runs from it and leaves it; a broken one is replaced',
    () => {
      const xdg = temp();
      expect(run(xdg).stdout.trim()).toBe(version);
      const dir = join(xdg, 'fleet-deploy');
      const files = readdirSync(dir);
      expect(files).toEqual([expect.stringMatching(/^cli-[a-f0-9]{32}-v[\d.]+-\w+-\w+-other\.v8$/)]);
      const file = join(dir, files[0]!);
      const first = lstatSync(file);
      expect(first.mode & 0o777).toBe(0o600);
      expect(first.size).toBeGreaterThan(100_000);

      expect(run(xdg).stdout.trim()).toBe(version);
      expect(lstatSync(file).ino).toBe(first.ino); // accepted by V8: not written again

      writeFileSync(file, Buffer.alloc(first.size, 7), { mode: 0o600 });
      expect(run(xdg).stdout.trim()).toBe(version);
      expect(readFileSync(file).equals(Buffer.alloc(first.size, 7))).toBe(false); // rejected, rewritten
      expect(readdirSync(dir)).toEqual(files);

      // another subcommand keeps a cache of its own
      expect(run(xdg, ['help']).status).toBe(0);
      expect(readdirSync(dir).sort()).toEqual([...files, files[0]!.replace('-other.v8', '-help.v8')].sort());
    },
  );

  test('a cache directory that is a link: the command runs, and nothing is written through it', () => {
    const xdg = temp();
    mkdirSync(join(xdg, 'target'), { mode: 0o700 });
    symlinkSync(join(xdg, 'target'), join(xdg, 'fleet-deploy'));
    const r = run(xdg);
    expect([r.status, r.stdout.trim()]).toEqual([0, version]);
    expect(readdirSync(join(xdg, 'target'))).toEqual([]);
  });
});
