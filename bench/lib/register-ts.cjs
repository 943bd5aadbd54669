// Runs the TypeScript benchmarks on Node 20, which cannot load .ts itself:
//   node --require ./bench/lib/register-ts.cjs bench/fleet.ts
// Each .ts file is transpiled to CommonJS as it is required (TypeScript's transpileModule: no type check,
// which `npm run typecheck` does; no bundle, no files written). The benchmarks import src/ directly, so
// they measure and drive the same code the tests do.
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS preload, for node --require */
const { readFileSync } = require('node:fs');
const ts = require('typescript');

const compilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  esModuleInterop: true,
  inlineSourceMap: true,
};

require.extensions['.ts'] = (module, filename) => {
  const source = readFileSync(filename, 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions, fileName: filename });
  module._compile(outputText, filename);
};
process.setSourceMapsEnabled(true);
