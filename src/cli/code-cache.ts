/**
 * The entry of the `fleet-deploy` command (dist/cli.js, written by .ci/build.mjs from this file): it runs
 * the command's bundle (dist/cli.bundle.js, src/cli/bin.ts) from a V8 code cache kept for that very
 * bundle, so that Node does not compile its 2.8 MB at every start (about 50 ms of a start's 200 ms of
 * CPU: docs/PERFORMANCE.md). On Node 22.8 and later that is Node's own compile cache
 * (`module.enableCompileCache`); on Node 20 the bundle is compiled here, by `vm.Script` with the cached
 * data, which is written back once the command has run (so it holds what the run compiled).
 *
 * What is read from the cache runs as the user, so it is kept where the user alone can write:
 * $XDG_CACHE_HOME/fleet-deploy, else ~/.cache/fleet-deploy — a directory of the user's, mode 700, not a
 * link — and a cache file is used only when it, too, is the user's, not a link, and writable by no one
 * else. A file is named by the bundle's sha256 (which the build passes in), Node's version, the platform
 * and the subcommand: V8 checks only the length of the source it was made from. Anything short of a valid cache
 * (FLEET_DEPLOY_CODE_CACHE=0, no home, a read-only disk, a rejected or broken file) only means a slower
 * start: the bundle runs all the same.
 *
 * Only node: modules here: this file is transpiled, not bundled.
 */
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { Script, constants as vmConstants } from 'node:vm';

const uid = process.getuid?.();

/** Whether a file is this user's (on a platform without uids, every file is). */
const mine = (st: { uid: number }): boolean => uid === undefined || st.uid === uid;
/** Whether a file's owner and mode leave it to this user alone (owner us; no group or other write). */
const ours = (st: { uid: number; mode: number }): boolean => mine(st) && (st.mode & 0o022) === 0;

/** The status of `path` (of a link itself, unless `follow`), or undefined when there is none. */
function statOf(path: string, follow = false): Stats | undefined {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Whether `path` is a directory (not a link) of this user's. */
function ownDirectory(path: string): boolean {
  const st = statOf(path);
  return st !== undefined && st.isDirectory() && mine(st);
}

/** `path`, made (mode 700) when missing, when it is then a directory (not a link) of the user's alone. */
function privateDirectory(path: string): boolean {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  }
  const st = statOf(path);
  return st !== undefined && st.isDirectory() && ours(st);
}

/**
 * The directory the cache is kept in: fleet-deploy (made when missing, mode 700) in $XDG_CACHE_HOME, an
 * existing directory of the user's, else in ~/.cache (made when missing, in a home of the user's).
 * Undefined when the cache is switched off, or that directory is not the user's alone (a link, another
 * owner, writable by group or others), or cannot be written: nothing is ever made in someone else's home
 * (`sudo` keeps HOME), and nothing but a slower start follows.
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.FLEET_DEPLOY_CODE_CACHE === '0') return undefined;
  const xdg = env.XDG_CACHE_HOME;
  let base: string;
  if (xdg && isAbsolute(xdg)) {
    if (!ownDirectory(xdg)) return undefined;
    base = xdg;
  } else {
    const home = env.HOME || homedir();
    if (!home || !isAbsolute(home) || !ownDirectory(home)) return undefined;
    base = join(home, '.cache');
    if (!statOf(base, true)?.isDirectory() && !privateDirectory(base)) return undefined;
  }
  const dir = join(base, 'fleet-deploy');
  if (!privateDirectory(dir)) return undefined;
  try {
    accessSync(dir, constants.W_OK);
    return dir;
  } catch {
    return undefined;
  }
}

/** How many cache files one build keeps at most (one per subcommand; a mistyped one counts too). */
const MAX_FILES = 24;

/** The start of the names of the cache files of a bundle with this sha256, on this Node and platform. */
function buildPrefix(sha256: string): string {
  if (!/^[a-f0-9]{64}$/.test(sha256)) throw new Error(`not a sha256: ${JSON.stringify(sha256)}`);
  return `cli-${sha256.slice(0, 32)}-${process.version}-${process.platform}-${process.arch}-`;
}

/**
 * The cache file for a bundle with this sha256 on this Node and platform, one per subcommand (`deploy`,
 * `status`, …: what a run compiles depends on it, and a cache holds what the run that wrote it compiled).
 */
export function cacheFile(dir: string, sha256: string, command: string | undefined): string {
  const name = command !== undefined && /^[a-z][a-z-]{0,31}$/.test(command) ? command : 'other';
  return join(dir, `${buildPrefix(sha256)}${name}.v8`);
}

/**
 * What a run is, for its cache: its subcommand, and `-dry-run` after it when it only prints what it
 * would do (a dry run compiles far less than the real one: its cache would serve the real one badly).
 */
export function runOf(args: readonly string[]): string | undefined {
  const [command] = args;
  return command !== undefined && args.includes('--dry-run') ? `${command}-dry-run` : command;
}

/**
 * Makes room before a new cache file of the build `sha256` is written: removes the files of other builds
 * and Node versions, and temporary files left an hour ago or more (a run killed while writing). False when
 * the build has MAX_FILES already (the new file is then not written).
 */
export function tidyCache(dir: string, sha256: string, now = Date.now()): boolean {
  const prefix = buildPrefix(sha256);
  let kept = 0;
  try {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name.startsWith(prefix)) kept++;
      else if (/^cli-.*\.v8$/.test(name)) rmSync(path, { force: true });
      else if (name.startsWith('.tmp-') && now - lstatSync(path).mtimeMs > 3_600_000)
        rmSync(path, { force: true });
    }
  } catch {
    return false;
  }
  return kept < MAX_FILES;
}

/** The cached data in `file`, when it is a regular file of the user's alone (opened without following a link). */
export function readCache(file: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile() || !ours(st)) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Writes `data` to `file` whole or not at all: a new file (mode 600) beside it, renamed over it. */
export function writeCache(file: string, data: Buffer): void {
  const tmp = join(dirname(file), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch {
    rmSync(tmp, { force: true });
  }
}

/**
 * Runs the CommonJS bundle `file`, whose sha256 is `sha256`, from the code cache when there is one (see
 * the top of this file); without a cache, as a plain `require`.
 */
export function launch(file: string, sha256: string): void {
  const dir = cacheDir();
  const load = createRequire(file);
  const enableCompileCache = (Module as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache;
  if (dir === undefined || enableCompileCache) {
    if (dir !== undefined) enableCompileCache?.(dir);
    load(file);
    return;
  }
  const cache = cacheFile(dir, sha256, runOf(process.argv.slice(2)));
  const cachedData = readCache(cache);
  // (a dynamic import() in the bundle loads as from a file: USE_MAIN_CONTEXT_DEFAULT_LOADER, Node 20.12+)
  const dynamic = (vmConstants as Partial<typeof vmConstants> | undefined)?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), {
    filename: file,
    cachedData,
    ...(dynamic !== undefined ? { importModuleDynamically: dynamic } : {}),
  });
  if (cachedData === undefined || script.cachedDataRejected === true)
    process.once('exit', () => {
      if (tidyCache(dir, sha256)) writeCache(cache, script.createCachedData());
    });
  const module = { exports: {}, filename: file, id: file, loaded: false };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, load, module, file, dirname(file));
}
