// The command's code cache (src/cli/code-cache.ts), kept out of the user's home while the tests run: the
// commands the tests start write theirs under a temporary XDG_CACHE_HOME (inherited by the workers and
// the processes they start), removed at the end; a command started with a bare environment (no
// XDG_CACHE_HOME) writes to ~/.cache/fleet-deploy, where whatever the run added is removed too (on Node
// 22.8+ a directory: Node's own compile cache).
/* eslint-disable @typescript-eslint/no-require-imports -- jest loads a global setup as CommonJS */
const { existsSync, mkdtempSync, readdirSync, rmSync, rmdirSync } = require('node:fs');
const { tmpdir, userInfo } = require('node:os');
const { join } = require('node:path');

const homeCaches = () =>
  [...new Set([process.env.HOME, userInfo().homedir].filter(Boolean))].map((h) =>
    join(h, '.cache', 'fleet-deploy'),
  );
const entries = (dir) => (existsSync(dir) ? readdirSync(dir) : undefined);

async function setup() {
  globalThis.__codeCache = {
    tmp: mkdtempSync(join(tmpdir(), 'fd-code-cache-')),
    before: homeCaches().map((dir) => ({ dir, entries: entries(dir) })),
  };
  process.env.XDG_CACHE_HOME = globalThis.__codeCache.tmp;
}

async function teardown() {
  const state = globalThis.__codeCache;
  if (!state) return;
  rmSync(state.tmp, { recursive: true, force: true });
  for (const { dir, entries: had } of state.before) {
    for (const name of entries(dir) ?? [])
      if (!had?.includes(name)) rmSync(join(dir, name), { recursive: true, force: true });
    if (had === undefined && existsSync(dir)) rmdirSync(dir);
  }
}

module.exports = { setup, teardown };
