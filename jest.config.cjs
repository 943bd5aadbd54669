/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // the reliability suite runs on its own: npm run test:chaos (jest.chaos.config.cjs)
  testPathIgnorePatterns: ['/node_modules/', '/__tests__/chaos/'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 30000,
  // the command's code cache in a temporary directory, not the user's home (helpers/code-cache-setup.cjs)
  globalSetup: '<rootDir>/__tests__/helpers/global-setup.cjs',
  globalTeardown: '<rootDir>/__tests__/helpers/global-teardown.cjs',
  reporters: ['default', '<rootDir>/.ci/summary-reporter.cjs'],
};
