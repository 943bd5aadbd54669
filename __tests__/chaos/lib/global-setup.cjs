// A fresh results file for each run of the suite (.ci/reliability.mjs reads it), and the command's code
// cache kept out of the user's home (helpers/code-cache-setup.cjs).
/* eslint-disable @typescript-eslint/no-require-imports -- jest loads a global setup as CommonJS */
const { mkdirSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const codeCache = require('../../helpers/code-cache-setup.cjs');

module.exports = async function globalSetup(config) {
  const dir = join(config.rootDir, 'chaos-results');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await codeCache.setup();
};
