// eslint-disable-next-line @typescript-eslint/no-require-imports -- jest loads a global teardown as CommonJS
module.exports = require('./code-cache-setup.cjs').teardown;
