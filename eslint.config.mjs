import globals from 'globals';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // A function longer than this is several steps that want names of their own.
    files: ['src/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }] },
  },
  {
    // A line a reader can take in at once: long scripts are built from named pieces instead. Only a URL
    // may run longer.
    files: ['src/**/*.ts'],
    rules: {
      // strings, template literals, comments and regular expressions count too (their defaults)
      'max-len': ['error', { code: 140, ignoreUrls: true }],
    },
  },
  {
    files: ['__tests__/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Pure layers never touch I/O or the GitHub toolkit (docs/architecture.md; __tests__/imports.test.ts holds the rooms).
    files: [
      'src/registry/**/*.ts',
      'src/plan/**/*.ts',
      'src/report/**/*.ts',
      'src/remote/**/*.ts',
      'src/deploy/**/*.ts',
      'src/health/**/*.ts',
      'src/analysis/**/*.ts',
      'src/proxy/**/*.ts',
      'src/fleet/**/*.ts',
      'src/ports.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            '@actions/*',
            'node-ssh',
            'ssh2',
            'fs',
            'node:fs',
            'net',
            'node:net',
            'child_process',
            'node:child_process',
          ],
        },
      ],
    },
  },
);
