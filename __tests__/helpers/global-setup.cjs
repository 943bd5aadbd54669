// eslint-disable-next-line @typescript-eslint/no-require-imports -- jest loads a global setup as CommonJS
module.exports = require('./code-cache-setup.cjs').setup;
