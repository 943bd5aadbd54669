/**
 * The entry of the `fleet-deploy` command (dist/cli.js, written by .ci/build.mjs from this file): it runs
 * the command's bundle (dist/cli.bundle.js, src/cli/bin.ts) from a V8 code cache kept for that very
 * bundle, so that Node does not compile its 2.8 MB at every start (about 50 ms of a start's 200 ms of
 * CPU: docs/PERFORMANCE.md). On Node 22.1 and later that is Node's own compile cache
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
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { Script } from 'node:vm';

/** Whether a file's owner and mode leave it to this user alone (owner us; no group or other write). */
function ours(st: { uid: number; mode: number }): boolean {
  const uid = process.getuid?.();
  return (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
}

/**
 * The directory the cache is kept in, made if missing (mode 700); undefined when the cache is switched
 * off or the directory is not the user's alone: a link, another owner, writable by group or others.
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.FLEET_DEPLOY_CODE_CACHE === '0') return undefined;
  const xdg = env.XDG_CACHE_HOME;
  let base = xdg && isAbsolute(xdg) ? xdg : undefined;
  if (!base) {
    const home = env.HOME || homedir();
    if (!home || !isAbsolute(home)) return undefined;
    base = join(home, '.cache');
  }
  const dir = join(base, 'fleet-deploy');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    return st.isDirectory() && ours(st) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The cache file for a bundle with this sha256 on this Node and platform, one per subcommand (`deploy`,
 * `status`, …: what a run compiles depends on it, and a cache holds what the run that wrote it compiled).
 */
export function cacheFile(dir: string, sha256: string, command: string | undefined): string {
  if (!/^[a-f0-9]{64}$/.test(sha256)) throw new Error(`not a sha256: ${JSON.stringify(sha256)}`);
  const name = command !== undefined && /^[a-z][a-z-]{0,31}$/.test(command) ? command : 'other';
  return join(
    dir,
    `cli-${sha256.slice(0, 32)}-${process.version}-${process.platform}-${process.arch}-${name}.v8`,
  );
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
  const cache = cacheFile(dir, sha256, process.argv[2]);
  const cachedData = readCache(cache);
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected === true)
    process.once('exit', () => writeCache(cache, script.createCachedData()));
  const module = { exports: {}, filename: file, id: file, loaded: false };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, load, module, file, dirname(file));
}
