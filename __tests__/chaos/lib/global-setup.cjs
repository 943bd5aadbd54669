// A fresh results file for each run of the suite (.ci/reliability.mjs reads it).
/* eslint-disable @typescript-eslint/no-require-imports -- jest loads a global setup as CommonJS */
const { mkdirSync, rmSync } = require('node:fs');
const { join } = require('node:path');

module.exports = async function globalSetup(config) {
  const dir = join(config.rootDir, 'chaos-results');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
};
