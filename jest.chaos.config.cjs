/**
 * The reliability suite (`npm run test:chaos`, docs/RELIABILITY.md): faults, hostile input, host keys,
 * secrets, concurrency, load and the server's own limits, over real sshd. Each scenario records its result
 * in chaos-results/results.jsonl; `.ci/reliability.mjs` turns them into the table.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a jest config is CommonJS
const main = require('./jest.config.cjs');

/** @type {import('jest').Config} */
module.exports = {
  ...main,
  testMatch: ['**/__tests__/chaos/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: '<rootDir>/__tests__/chaos/lib/global-setup.cjs',
  testTimeout: 120000,
  maxWorkers: 2,
};
