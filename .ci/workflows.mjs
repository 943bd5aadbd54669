#!/usr/bin/env node
// Writes the reusable workflows .github/workflows/deploy.yml and rollback.yml from one description, so a
// wave's body is written once and the matrix mode has WAVES waves without copies. Edit this file, then
// run `node .ci/workflows.mjs`; __tests__/workflow-generated.test.ts fails while the files differ from it.
//
// Every job that runs one of our actions first checks out fleet-deploy itself at `job.workflow_sha` (the
// commit of this workflow that the caller's `uses: …@ref` resolved to) and runs `./.fleet-deploy/actions/x`:
// a caller pinned to @v1.2.3 or to a commit SHA runs exactly those actions, never a moving tag.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'prettier';

/** Waves the matrix mode supports: jobs wave-1 … wave-WAVES and gate-1 … gate-(WAVES-1). */
export const WAVES = 10;

// Third-party actions, pinned by commit SHA to their Node 24 majors (Dependabot keeps them current).
export const PINS = {
  checkout: 'actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1',
  upload: 'actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f # v7.0.0',
  download: 'actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c # v8.0.1',
};

/**
 * The rollout settings the workflows pass through to the deploy and rollback actions, by their names in
 * src/settings.ts: each becomes a workflow input with the setting's input name, help and default, so the
 * CLI, the actions and the workflows share one table and cannot drift (workflow-generated.test.ts).
 */
export const PASSED_SETTINGS = [
  'perServer',
  'lockWaitMs',
  'breakLocksOlderThanMs',
  'commandTimeoutMs',
  'pullTimeoutMs',
  'pullAttempts',
  'recoveryWindowMs',
  'prePull',
  'prePullWaves',
  'prePullMinFreeMb',
];
/** The wave jobs' timeout-minutes when the caller sets none (GitHub's own default is 360): the table's. */
export const WAVE_TIMEOUT_MINUTES = Number(loadSettings().waveTimeout.default);
/** A number input's default, from its row of the settings table. */
const num = (row) => Number(row.default);

/** src/settings.ts's table, loaded the way the benchmarks load TypeScript on Node 20. */
export function loadSettings() {
  const require = createRequire(import.meta.url);
  require('../bench/lib/register-ts.cjs');
  return require('../src/settings.ts').SETTINGS;
}

/** The settings' rows, each with its input name (a row the table no longer has is an error here). */
const passedRows = (settings) =>
  PASSED_SETTINGS.filter((name) => settings[name]).map((name) => {
    const row = settings[name];
    if (!row.input) throw new Error(`settings.${name} has no action input to pass`);
    return row;
  });

/** The workflow_call inputs of the passed settings: the table's input name, help and default. */
const settingInputs = (settings) =>
  passedRows(settings)
    .map(
      (row) => `
${row.input}:
  description: ${JSON.stringify(`${row.help[0].toUpperCase()}${row.help.slice(1)} (as the CLI's --${row.flag ?? row.input}).`)}
  type: string
  default: ${JSON.stringify(row.default ?? '')}`,
    )
    .join('');

/** The action inputs that hand them on. */
const settingWith = (settings) =>
  passedRows(settings)
    .map((row) => `\n${row.input}: ${e(`inputs.${row.input}`)}`)
    .join('');

/** Where our own actions are checked out in each job's workspace. */
export const OWN_PATH = '.fleet-deploy';
const e = (expr) => '${{ ' + expr + ' }}';
const indent = (text, n) =>
  text
    .split('\n')
    .map((l) => (l ? ' '.repeat(n) + l : l))
    .join('\n');
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const SINGLE_SERVER_INPUTS = `
image-repository:
  description: 'One server without a registry: the image repository (its host, user, port and path come from secrets).'
  type: string
  default: ''
image-variable:
  description: 'One server without a registry: the variable in .env that holds the image (default APP_IMAGE).'
  type: string
  default: ''
host-key:
  description: 'One server without a registry: its pinned host key (or pass the known-hosts secret).'
  type: string
  default: ''
compose-command:
  description: 'One server without a registry: the compose command on the server (default "docker compose").'
  type: string
  default: ''
health-port:
  description: "One server without a registry: the health check's port on the server's 127.0.0.1."
  type: string
  default: ''
health-path:
  description: 'One server without a registry: the health check path (default /health).'
  type: string
  default: ''
health-url:
  description: 'One server without a registry: a public health URL instead of health-port.'
  type: string
  default: ''
fleet-deploy-ref:
  description: >-
    Only where the runner does not set job.workflow_sha (older GitHub Enterprise Server): the tag or commit
    of fleet-deploy in your uses: line, so the jobs run the actions of that very commit.
  type: string
  default: ''
fleet-deploy-repository:
  description: >-
    Only where the runner does not set job.workflow_repository (older GitHub Enterprise Server): the
    owner/name of the fleet-deploy repository in your uses: line (your fork, say).
  type: string
  default: ''
call-key:
  description: >-
    Names this call's report artifacts (letters, digits, _ and -; at most 40). Empty: derived from the
    call's inputs, so two calls in one run (a matrix of components, staging then production) never share
    a name. Set it when one run calls this workflow twice with the same inputs.
  type: string
  default: ''`;

const SECRETS = `
ssh-private-key:
  description: 'The deploy SSH private key (masked, never written to disk). Or keep it in the environment as SSH_PRIVATE_KEY.'
  required: false
SSH_PRIVATE_KEY:
  description: >-
    The deploy SSH private key as a secret of the GitHub environment: pass it by this name
    (SSH_PRIVATE_KEY: secrets.SSH_PRIVATE_KEY in an expression); jobs bound to the environment read the
    environment's value. Wins over ssh-private-key.
  required: false
known-hosts:
  description: 'Optional known_hosts lines, trusted besides the host keys pinned in the registry.'
  required: false
SSH_KNOWN_HOSTS:
  description: 'known_hosts lines as a secret of the GitHub environment, passed by this name like SSH_PRIVATE_KEY.'
  required: false
REGISTRY_USERNAME:
  description: 'The image registry user for the pull, when it is a secret (a repository, organisation or environment secret; wins over the registry-username input).'
  required: false
REGISTRY_PASSWORD:
  description: >-
    The image registry password or token for the pull (masked; it reaches the servers on stdin only, and
    no credential stays on them unless keep-registry-login). For GHCR: secrets.GITHUB_TOKEN, with
    packages: read granted by the calling job, and registry-host: ghcr.io.
  required: false
REGISTRY_LOGINS:
  description: >-
    More registry logins, one a line: "HOST USERNAME PASSWORD" (a stack mixing GHCR and Docker Hub, say).
    Each goes only to its host, and only for a tenant whose images name it. Passed by this name, it can be
    a secret of the GitHub environment like SSH_PRIVATE_KEY.
  required: false
host:
  description: 'One server without a registry: its host (with ssh-user, ssh-port and path); the registry is then not read.'
  required: false
ssh-user:
  description: 'One server without a registry: the SSH user.'
  required: false
ssh-port:
  description: 'One server without a registry: the SSH port.'
  required: false
path:
  description: "One server without a registry: the stack's directory on the server."
  required: false
fleet-deploy-token:
  description: >-
    A token that can read the fleet-deploy repository you call (a GitHub App installation token, or a
    fine-grained token with contents: read), for the jobs' checkout of its actions. Needed when that
    repository is private or internal and not the caller's own: the job's GITHUB_TOKEN reaches only the
    caller's repository. Empty: the job's token.
  required: false`;

/** The inputs every one of our actions takes for the registry or a single server. */
const TARGET_WITH = `
registry: ${e('inputs.registry')}
host: ${e('secrets.host')}
ssh-user: ${e('secrets.ssh-user')}
ssh-port: ${e('secrets.ssh-port')}
path: ${e('secrets.path')}
host-key: ${e('inputs.host-key')}
image-repository: ${e('inputs.image-repository')}
image-variable: ${e('inputs.image-variable')}
compose-command: ${e('inputs.compose-command')}
health-port: ${e('inputs.health-port')}
health-path: ${e('inputs.health-path')}
health-url: ${e('inputs.health-url')}`;

const SSH_WITH = `
ssh-key: ${e('secrets.SSH_PRIVATE_KEY || secrets.ssh-private-key')}
known-hosts: ${e('secrets.SSH_KNOWN_HOSTS || secrets.known-hosts')}
registry-host: ${e('inputs.registry-host')}
registry-username: ${e('secrets.REGISTRY_USERNAME || inputs.registry-username')}
registry-password: ${e('secrets.REGISTRY_PASSWORD')}
registry-logins: ${e('secrets.REGISTRY_LOGINS')}
keep-registry-login: ${e('inputs.keep-registry-login')}`;

/** The inputs of the registry login, in both reusable workflows. */
const REGISTRY_INPUTS = `
registry-host:
  description: "The registry host the registry-username login is for, as image names have it (ghcr.io; docker.io for Docker Hub). Only images of that host log in: the token never reaches another registry."
  type: string
  default: ''
registry-username:
  description: "The image registry user for the pull, with the REGISTRY_PASSWORD secret (for GHCR with the job token: github.actor). Empty: no login (the servers are logged in, or the images are public)."
  type: string
  default: ''
keep-registry-login:
  description: "Leave the registry login on the servers (the engine's own config) instead of removing it after the pull."
  type: boolean
  default: false`;

/** What a job that pulls needs: the registry, and GHCR packages for a login with the job token. */
const PULL_PERMISSIONS = `
permissions:
  contents: read # read the registry
  packages: read # pull private images from GHCR with the job token (REGISTRY_PASSWORD)`;

const checkoutCaller = (why) => `
- uses: ${PINS.checkout}
  with:
    persist-credentials: false # ${why}`;

/** Where the called fleet-deploy lives: the runner says (job.workflow_*), or an older GHES's caller does. */
export const OWN_REPOSITORY = e('job.workflow_repository || inputs.fleet-deploy-repository');
export const OWN_REF = e('job.workflow_sha || inputs.fleet-deploy-ref');
/** The checkout's token: the caller's own for a private fork or an internal repository, else the job's. */
export const OWN_TOKEN = e('secrets.fleet-deploy-token || github.token');

/** fleet-deploy at the commit the caller referenced; the job then runs ./.fleet-deploy/actions/x. */
const checkoutOwn = `
- name: Check out fleet-deploy at the commit the caller referenced
  uses: ${PINS.checkout}
  with:
    repository: ${OWN_REPOSITORY}
    ref: ${OWN_REF}
    token: ${OWN_TOKEN}
    path: ${OWN_PATH}
    persist-credentials: false
    sparse-checkout: |
      actions
      dist`;

/** The plan and rollback jobs refuse to run when no commit of fleet-deploy is known (no moving fallback). */
const ownCommitKnown = `
- name: The fleet-deploy repository and commit are known
  env:
    WORKFLOW_SHA: ${e('job.workflow_sha')}
    FALLBACK_REF: ${e('inputs.fleet-deploy-ref')}
    WORKFLOW_REPOSITORY: ${e('job.workflow_repository')}
    FALLBACK_REPOSITORY: ${e('inputs.fleet-deploy-repository')}
  run: |
    if [ -z "$WORKFLOW_SHA" ] && [ -z "$FALLBACK_REF" ]; then
      echo "::error::this runner does not say which fleet-deploy commit you called (job.workflow_sha is empty): pass fleet-deploy-ref with the tag or commit of your uses: line"
      exit 1
    fi
    if [ -z "$WORKFLOW_REPOSITORY" ] && [ -z "$FALLBACK_REPOSITORY" ]; then
      echo "::error::this runner does not say which fleet-deploy repository you called (job.workflow_repository is empty): pass fleet-deploy-repository with the owner/name of your uses: line"
      exit 1
    fi`;

/**
 * Every report artifact of one call is named \`fleet-deploy-report.<call key>.<job>-a<attempt>\`: the key
 * keeps two calls in one run apart (a run's artifacts are shared by all its calls), and it holds no dot,
 * so one call's download pattern never matches another's names. The key: the call-key input, else the
 * first 12 hex digits of a SHA-256 over all the call's inputs (two calls with equal inputs need call-key).
 */
const callKeyStep = `
- name: This call's key (its report artifacts' names)
  id: key
  env:
    CALL_KEY: ${e('inputs.call-key')}
    CALL_INPUTS: ${e('toJSON(inputs)')}
  run: |
    if [ -z "$CALL_KEY" ]; then
      CALL_KEY=$(printf '%s' "$CALL_INPUTS" | sha256sum | cut -c1-12)
    elif ! [[ "$CALL_KEY" =~ ^[A-Za-z0-9_-]{1,40}$ ]]; then
      echo "::error::the call-key input must be 1 to 40 letters, digits, _ or - (it names this call's artifacts; no dot, no space)"
      exit 1
    fi
    echo "call-key=$CALL_KEY" >> "$GITHUB_OUTPUT"`;

/** The artifact name of one job's report in a call (`key`: an expression giving the call key). */
const reportName = (key, job) => `fleet-deploy-report.${e(key)}.${job}-a${e('github.run_attempt')}`;
/** The download pattern for a call's reports whose job part starts with `prefix`. */
const reportPattern = (key, prefix = '') => `fleet-deploy-report.${e(key)}.${prefix}*`;
const PLAN_KEY = 'needs.plan.outputs.call-key';

/** Report artifacts are named per run attempt: a re-run of failed jobs uploads beside, never onto, the first. */
const uploadReport = (step, name) => `
- if: always() && steps.${step}.outputs.report-file != ''
  uses: ${PINS.upload}
  with:
    name: ${name}
    path: ${e(`steps.${step}.outputs.report-file`)}
    retention-days: 30`;

const downloadReports = (pattern) => `
- uses: ${PINS.download}
  with:
    pattern: ${pattern}
    path: fleet-deploy-reports
    merge-multiple: true`;

/** A `steps:` list for a job whose keys sit `base` spaces in. */
const steps = (base, ...parts) => `steps:${indent(parts.join(''), base + 2)}`;

const HEADER = `# GENERATED by .ci/workflows.mjs: edit that file, then run \`node .ci/workflows.mjs\` (a test fails on drift).`;

/**
 * Concurrency. Two deploys to one environment never overlap: a second waits (GitHub keeps one waiting
 * run per group, and a newer one replaces it). A rollback has a group of its own, so no deploy, waiting or
 * running, ever drops or cancels it; a rollback and a deploy that meet on a target are kept apart by the
 * target's lock on the server. Neither cancels what runs. The two prefixes differ before the environment's
 * name, so no environment's name makes a deploy's group equal a rollback's.
 */
export const DEPLOY_GROUP = `fleet-deploy-${e('inputs.environment')}`;
export const ROLLBACK_GROUP = `fleet-rollback-${e('inputs.environment')}`;
const DEPLOY_CONCURRENCY = `# Two deploys to one environment never overlap; a second one waits instead of cancelling the first.
concurrency:
  group: ${DEPLOY_GROUP}
  cancel-in-progress: false`;
const ROLLBACK_CONCURRENCY = `# A group of its own: no deploy (waiting for an approval, say) can drop or cancel a rollback.
concurrency:
  group: ${ROLLBACK_GROUP}
  cancel-in-progress: false`;

// ---------------------------------------------------------------------------------------------- deploy

function planJob() {
  return `
plan:
  runs-on: ubuntu-latest
  timeout-minutes: 10
  # No permissions key: this job inherits the calling job's, which must grant contents: read (the registry)
  # and, only with deployments: true, deployments: write (it creates the GitHub Deployment).
  outputs:
    matrices: ${e('steps.plan.outputs.matrices')}
    wave-1-rest: ${e('steps.plan.outputs.wave-1-rest')}
    wave-count: ${e('steps.plan.outputs.wave-count')}
    target-count: ${e('steps.plan.outputs.target-count')}
    cumulative: ${e('steps.plan.outputs.cumulative')}
    environments: ${e('steps.plan.outputs.environments')}
    deployment-id: ${e('steps.deployment.outputs.deployment-id')}
    call-key: ${e('steps.key.outputs.call-key')}
  ${steps(
    2,
    ownCommitKnown,
    callKeyStep,
    checkoutCaller('read the registry'),
    checkoutOwn,
    `
- id: plan
  uses: ./${OWN_PATH}/actions/plan
  with:${indent(TARGET_WITH, 4)}
    select: ${e('inputs.select')}
    waves: ${e('inputs.waves')}
    max-per-job: ${e('inputs.max-per-job')}
    max-jobs-per-server: ${e('inputs.max-jobs-per-server')}
    environment: ${e('inputs.environment')}
    wave-environments: ${e('inputs.wave-environments')}
- name: At most ${WAVES} waves in matrix mode
  if: inputs.mode == 'matrix'
  env:
    WAVES: ${e('steps.plan.outputs.wave-count')}
  run: |
    if [ "$WAVES" -gt ${WAVES} ]; then
      echo "::error::the plan has $WAVES waves; this workflow runs at most ${WAVES} in matrix mode (use fewer steps, or mode: fleet)"
      exit 1
    fi
- id: deployment
  if: inputs.deployments && !inputs.dry-run
  uses: ./${OWN_PATH}/actions/summary
  with:
    deployment: start
    environment: ${e('inputs.environment')}
    title: Deploy ${e('inputs.version || inputs.versions')}`,
  )}`;
}

/** A wave job's steps: deploy `targets`, with the hooks marked `once` or not, and upload the report as `job`. */
const waveSteps = (settings, targets, onceHooks, job) =>
  steps(
    2,
    checkoutCaller('read the registry'),
    checkoutOwn,
    `
- id: deploy
  uses: ./${OWN_PATH}/actions/deploy
  with:${indent(TARGET_WITH, 4)}
    version: ${e('inputs.version')}
    versions: ${e('inputs.versions')}
    targets: ${targets}
    once-hooks: '${onceHooks}'
    dry-run: ${e('inputs.dry-run')}${indent(SSH_WITH, 4)}${indent(settingWith(settings), 4)}`,
    uploadReport('deploy', reportName(PLAN_KEY, job)),
  );

/** The keys every wave job has: its timeout, its wave's environment and the pull permissions. */
const waveEnvironment = (n) => `runs-on: ubuntu-latest
  timeout-minutes: ${e('inputs.wave-timeout-minutes')}
  environment:
    name: ${e(`fromJSON(needs.plan.outputs.environments)[${n - 1}]`)}
    url: ${e('inputs.environment-url')}${indent(PULL_PERMISSIONS, 2)}`;

/**
 * Hooks marked `once` (a database migration) run once per rollout, before any other target deploys: a
 * matrix cannot order its own jobs, so wave 1's first job is a job of its own, and the rest of wave 1
 * (wave-1, from the plan's wave-1-rest) needs it and runs only when it succeeded.
 */
function waveOneFirstJob(settings) {
  const first = 'fromJSON(needs.plan.outputs.matrices)[0].include[0]';
  return `
wave-1-first:
  name: wave 1 · ${e(`${first}.name`)} (hooks marked once)
  needs: [plan]
  if: inputs.mode == 'matrix' && fromJSON(needs.plan.outputs.wave-count) >= 1
  ${waveEnvironment(1)}
  ${waveSteps(settings, e(`${first}.targets`), 'true', 'w1-first')}`;
}

function waveJob(n, settings) {
  const base = "!cancelled() && needs.plan.result == 'success' && inputs.mode == 'matrix'";
  const condition =
    n === 1
      ? e(`${base} && needs.wave-1-first.result == 'success' && needs.plan.outputs.wave-1-rest != ''`)
      : e(
          `${base} && (needs.gate-${n - 1}.outputs.continue == 'true' || needs.approve-${n - 1}.result == 'success' || (inputs.dry-run && fromJSON(needs.plan.outputs.wave-count) >= ${n}))`,
        );
  const matrix =
    n === 1 ? 'fromJSON(needs.plan.outputs.wave-1-rest)' : `fromJSON(needs.plan.outputs.matrices)[${n - 1}]`;
  return `
wave-${n}:
  name: wave ${n} · ${e('matrix.name')}
  needs: [${n === 1 ? 'plan, wave-1-first' : `plan, gate-${n - 1}, approve-${n - 1}`}]
  if: ${condition}
  ${waveEnvironment(n)}
  strategy:
    fail-fast: false
    max-parallel: ${e('inputs.max-parallel')}
    matrix: ${e(matrix)}
  ${waveSteps(settings, e('matrix.targets'), 'false', `w${n}-j${e('strategy.job-index')}`)}`;
}

/** Wave n ran (wave 1: its first job, on its own, or the rest of it). */
const ran = (n) =>
  n === 1
    ? "(needs.wave-1-first.result != 'skipped' || needs.wave-1.result != 'skipped')"
    : `needs.wave-${n}.result != 'skipped'`;

function gateJob(n) {
  return `
gate-${n}:
  needs: [plan, ${n === 1 ? 'wave-1-first, ' : ''}wave-${n}]
  if: ${e(`!cancelled() && needs.plan.result == 'success' && inputs.mode == 'matrix' && !inputs.dry-run && ${ran(n)} && fromJSON(needs.plan.outputs.wave-count) > ${n}`)}
  runs-on: ubuntu-latest
  # The registry's analysis soaks here (rollout.analysis.soak), not in a sleeping deploy job.
  timeout-minutes: 360
  permissions:
    contents: read # the registry (its rollout.analysis) and fleet-deploy's actions; the reports are this run's artifacts
    packages: read # a failed analysis's rollback may pull the previous images from GHCR with the job token
  outputs:
    continue: ${e('steps.gate.outputs.continue')}
    pause: ${e('steps.gate.outputs.pause')}
    reason: ${e('steps.gate.outputs.reason')}
  ${steps(
    2,
    checkoutCaller('read the registry and its analysis'),
    checkoutOwn,
    downloadReports(reportPattern(PLAN_KEY, 'w')),
    `
- id: gate
  uses: ./${OWN_PATH}/actions/gate
  with:
    reports: fleet-deploy-reports
    wave: '${n}'
    max-failure-percent: ${e('inputs.max-failure-percent')}
    expected-targets: ${e(`fromJSON(needs.plan.outputs.cumulative)[${n - 1}]`)}
    analysis-url: ${e('inputs.analysis-url')}
    analysis-registry: ${e('inputs.registry')}
    select: ${e('inputs.select')}
    waves: ${e('inputs.waves')}
    version: ${e('inputs.version')}${indent(SSH_WITH, 4)}`,
  )}
approve-${n}:
  name: approve wave ${n + 1} (analysis inconclusive)
  needs: [gate-${n}]
  if: ${e(`!cancelled() && needs.gate-${n}.outputs.pause == 'true'`)}
  runs-on: ubuntu-latest
  timeout-minutes: 5
  # Give this environment required reviewers: the job (and so wave ${n + 1}) waits for their approval.
  environment: ${e('inputs.analysis-approval-environment')}
  permissions: {}
  steps:
    - name: Approved
      env:
        REASON: ${e(`needs.gate-${n}.outputs.reason`)}
      run: 'echo "approved after an inconclusive analysis — $REASON"'`;
}

/**
 * Wave n's pre-pull: once wave n-1 ended (a job's needs wait for whole jobs; fleet mode starts it at wave
 * n-1's first successful pull), beside gate n-1 and its soak, pull wave n's
 * images on its servers (the deploy action's pre-pull-wave). It never delays or blocks wave n: no job needs
 * it, and a failure is continue-on-error. It runs in wave n's environment (its SSH key), or in
 * pre-pull-environment when that is set (one without required reviewers: docs/workflows.md).
 */
function prePullJob(n, settings) {
  return `
prepull-${n}:
  name: pre-pull wave ${n} (beside gate ${n - 1})
  needs: [plan, ${n === 2 ? 'wave-1-first, ' : ''}wave-${n - 1}]
  if: ${e(`!cancelled() && needs.plan.result == 'success' && inputs.mode == 'matrix' && !inputs.dry-run && inputs.pre-pull != 'false' && ${ran(n - 1)} && fromJSON(needs.plan.outputs.wave-count) >= ${n}`)}
  continue-on-error: true
  runs-on: ubuntu-latest
  timeout-minutes: ${e('inputs.wave-timeout-minutes')}
  environment:
    name: ${e(`inputs.pre-pull-environment || fromJSON(needs.plan.outputs.environments)[${n - 1}]`)}${indent(PULL_PERMISSIONS, 2)}
  ${steps(
    2,
    checkoutCaller('read the registry'),
    checkoutOwn,
    `
- id: prepull
  uses: ./${OWN_PATH}/actions/deploy
  with:${indent(TARGET_WITH, 4)}
    version: ${e('inputs.version')}
    versions: ${e('inputs.versions')}
    select: ${e('inputs.select')}
    waves: ${e('inputs.waves')}
    pre-pull-wave: '${n}'${indent(SSH_WITH, 4)}${indent(settingWith(settings), 4)}`,
  )}`;
}

function fleetJob(settings) {
  return `
fleet:
  needs: [plan]
  if: inputs.mode == 'fleet'
  runs-on: ubuntu-latest
  timeout-minutes: 360
  environment:
    name: ${e('inputs.environment')}
    url: ${e('inputs.environment-url')}${indent(PULL_PERMISSIONS, 2)}
  ${steps(
    2,
    checkoutCaller('read the registry'),
    checkoutOwn,
    `
- id: deploy
  uses: ./${OWN_PATH}
  with:${indent(TARGET_WITH, 4)}
    version: ${e('inputs.version')}
    versions: ${e('inputs.versions')}
    select: ${e('inputs.select')}
    waves: ${e('inputs.waves')}
    concurrency: ${e('inputs.max-parallel')}
    max-failure-percent: ${e('inputs.max-failure-percent')}
    dry-run: ${e('inputs.dry-run')}${indent(SSH_WITH, 4)}${indent(settingWith(settings), 4)}`,
    uploadReport('deploy', reportName(PLAN_KEY, 'fleet')),
  )}`;
}

function summaryJob() {
  const gates = range(1, WAVES - 1);
  const stopped = gates
    .map((n) => `needs.gate-${n}.outputs.continue == 'false' && needs.gate-${n}.outputs.reason`)
    .join(' || ');
  return `
summary:
  needs: [plan, wave-1-first, ${range(1, WAVES)
    .map((n) => `wave-${n}`)
    .join(', ')}, ${gates.map((n) => `gate-${n}`).join(', ')}, fleet]
  if: always() && needs.plan.result == 'success' && !inputs.dry-run
  runs-on: ubuntu-latest
  timeout-minutes: 10
  # No permissions key: like plan, it inherits the calling job's: contents: read (the registry, for the
  # annotations) and, only with deployments: true, deployments: write (it finishes the Deployment).
  outputs:
    success: ${e('steps.summary.outputs.success')}
    totals: ${e('steps.summary.outputs.totals')}
  ${steps(
    2,
    checkoutCaller('the registry, to annotate failures on their lines'),
    checkoutOwn,
    downloadReports(reportPattern(PLAN_KEY)),
    `
- id: summary
  uses: ./${OWN_PATH}/actions/summary
  with:
    reports: fleet-deploy-reports
    registry: ${e('inputs.registry')}
    expected-targets: ${e('needs.plan.outputs.target-count')}
    stopped: ${e(`${stopped} || ''`)}
    title: Deploy ${e('inputs.version || inputs.versions')} to ${e('inputs.environment')}
    deployment: ${e("inputs.deployments && 'finish' || 'none'")}
    deployment-id: ${e('needs.plan.outputs.deployment-id')}
    environment: ${e('inputs.environment')}
    environment-url: ${e('inputs.environment-url')}`,
  )}`;
}

function deployWorkflow(settings) {
  const jobs = [
    planJob(),
    waveOneFirstJob(settings),
    ...range(1, WAVES).flatMap((n) => [
      ...(n > 1 ? [prePullJob(n, settings)] : []),
      waveJob(n, settings),
      ...(n < WAVES ? [gateJob(n)] : []),
    ]),
    fleetJob(settings),
    summaryJob(),
  ];
  return `${HEADER}
# The push-to-PRD deploy as a reusable workflow: plan → wave 1 → gate → wave 2 → … → summary (up to ${WAVES}
# waves in matrix mode). Call it from your repository (docs/examples/deploy-prd.yml is a complete file):
#   jobs:
#     deploy:
#       uses: fleet-deploy/fleet-deploy/.github/workflows/deploy.yml@v0
#       permissions: { contents: read, packages: read }
#       with: { version: "\${{ github.sha }}", waves: "1,5%,25%,100%" }
#       secrets: { ssh-private-key: "\${{ secrets.SSH_PRIVATE_KEY }}" }
# Each job checks out fleet-deploy at the commit your uses: line resolved to (job.workflow_sha) and runs
# ./${OWN_PATH}/actions/x from it, so a caller pinned to a tag or a commit runs exactly that code.
name: fleet-deploy

on:
  workflow_call:
    inputs:
      registry:
        description: 'Path of the server registry in the calling repository.'
        type: string
        default: '${settings.registry.default}'
      version:
        description: 'The image tag or digest to deploy (a digest pins exactly what was built): of every image not named in versions. Give this, versions, or both.'
        type: string
        default: ''
      versions:
        description: 'A version per image: "IMAGE_VARIABLE=VERSION" pairs separated by commas or newlines, e.g. "OPENCLAW_IMAGE=sha256:…,WRAPPER_IMAGE=sha256:…" (each build job''s digest).'
        type: string
        default: ''
      select:
        description: 'Which targets: a selection expression such as "region=eu,ring!=sandbox". Empty: every target.'
        type: string
        default: ''
      waves:
        description: 'Cumulative steps ("1,5%,25%,100%"), "rings" or "all". At most ${WAVES} waves in matrix mode.'
        type: string
        default: '${settings.waves.default}'
      max-parallel:
        description: 'Matrix jobs of one wave running at once.'
        type: number
        default: ${num(settings.maxParallel)}
      max-per-job:
        description: 'Targets one matrix job deploys (a wave never has more than 256 jobs).'
        type: number
        default: ${num(settings.maxPerJob)}
      max-jobs-per-server:
        description: "Matrix jobs of one wave on the same server. 1 (the default): a server's tenants in a wave share one job."
        type: number
        default: ${num(settings.maxJobsPerServer)}
      max-failure-percent:
        description: 'After each wave, stop when more than this share of the targets so far failed or were rolled back.'
        type: number
        default: ${num(settings.maxFailurePercent)}
      analysis-url:
        description: 'Optional canary analysis between waves: an HTTP(S) URL whose 2xx answer lets the rollout go on.'
        type: string
        default: ''
      analysis-approval-environment:
        description: 'The environment whose reviewers approve the next wave when the registry''s analysis is inconclusive under the "pause" policy (give it required reviewers).'
        type: string
        default: '${settings.approvalEnvironment.default}'
      environment:
        description: 'GitHub environment of the deploy jobs (protection rules, approvals, secrets), the Deployment and the concurrency group.'
        type: string
        default: '${settings.environment.default}'
      wave-environments:
        description: 'One GitHub environment per wave, e.g. "canary,production": the Nth for wave N, the last for later waves. Empty: environment.'
        type: string
        default: ''
      pre-pull-environment:
        description: >-
          The GitHub environment of the prepull-N jobs (they pull wave N's images beside gate N-1). Empty:
          wave N's own. Set it when that environment has required reviewers: an environment with the same
          SSH key secret and no reviewers, so a pre-pull never asks for a second approval.
        type: string
        default: ''
      environment-url:
        description: 'URL shown on the environment and the Deployment.'
        type: string
        default: ''
      dry-run:
        description: 'Print every remote command a deploy would run; connect to nothing.'
        type: boolean
        default: false
      mode:
        description: '"matrix": one job per target or batch, a job per wave; "fleet": one job deploys the whole selection in waves.'
        type: string
        default: '${settings.mode.default}'
      deployments:
        description: 'Record a GitHub Deployment (in_progress, success, failure). The calling job must then grant deployments: write.'
        type: boolean
        default: false
      wave-timeout-minutes:
        description: 'How long one wave job may run before GitHub stops it (its post step then switches back and unlocks).'
        type: number
        default: ${num(settings.waveTimeout)}${indent(settingInputs(settings), 6)}${indent(REGISTRY_INPUTS, 6)}${indent(SINGLE_SERVER_INPUTS, 6)}
    secrets:${indent(SECRETS, 6)}
    outputs:
      success:
        description: '"true" when every target was deployed or unchanged.'
        value: ${e('jobs.summary.outputs.success')}
      totals:
        description: 'JSON counts of the outcomes.'
        value: ${e('jobs.summary.outputs.totals')}

# No workflow-wide permissions: plan and summary inherit the calling job's grant (see there); every other
# job states its own, least privilege.

${DEPLOY_CONCURRENCY}

jobs:${indent(jobs.join('\n'), 2)}
`;
}

// -------------------------------------------------------------------------------------------- rollback

function rollbackWorkflow(settings) {
  return `${HEADER}
# Manual rollback as a reusable workflow: the selected targets go back to their previous release, or to a
# version from their release history; then the summary. See docs/examples/rollback.yml for the
# workflow_dispatch form that calls it.
name: fleet-deploy rollback

on:
  workflow_call:
    inputs:
      registry:
        description: 'Path of the server registry in the calling repository.'
        type: string
        default: '${settings.registry.default}'
      select:
        description: 'Which targets: a selection expression such as "tenant=acme-corp". Empty: every target.'
        type: string
        default: ''
      to:
        description: "The version to go back to; it must be in each target's history. Empty: each target's previous release."
        type: string
        default: ''
      concurrency:
        description: 'Targets rolled back at once.'
        type: number
        default: ${num(settings.concurrency)}
      environment:
        description: 'GitHub environment (protection rules, approvals, secrets) and concurrency group.'
        type: string
        default: '${settings.environment.default}'${indent(settingInputs(settings), 6)}${indent(REGISTRY_INPUTS, 6)}${indent(SINGLE_SERVER_INPUTS, 6)}
    secrets:${indent(SECRETS, 6)}
    outputs:
      success:
        description: '"true" when every target was rolled back (or already ran that version).'
        value: ${e('jobs.summary.outputs.success')}

permissions:
  contents: read

${ROLLBACK_CONCURRENCY}

jobs:
  rollback:
    runs-on: ubuntu-latest
    timeout-minutes: 120
    environment:
      name: ${e('inputs.environment')}${indent(PULL_PERMISSIONS, 4)}
    outputs:
      call-key: ${e('steps.key.outputs.call-key')}
    ${steps(
      4,
      ownCommitKnown,
      callKeyStep,
      checkoutCaller('read the registry'),
      checkoutOwn,
      `
- id: rollback
  uses: ./${OWN_PATH}/actions/rollback
  with:${indent(TARGET_WITH, 4)}
    select: ${e('inputs.select')}
    to: ${e('inputs.to')}
    concurrency: ${e('inputs.concurrency')}${indent(SSH_WITH, 4)}${indent(settingWith(settings), 4)}`,
      uploadReport('rollback', reportName('steps.key.outputs.call-key', 'rollback')),
    )}

  summary:
    needs: [rollback]
    if: always()
    runs-on: ubuntu-latest
    timeout-minutes: 10
    permissions:
      contents: read # the registry, to annotate failures on their lines
    outputs:
      success: ${e('steps.summary.outputs.success')}
    ${steps(
      4,
      checkoutCaller('the registry, to annotate failures on their lines'),
      checkoutOwn,
      downloadReports(reportPattern('needs.rollback.outputs.call-key')),
      `
- id: summary
  uses: ./${OWN_PATH}/actions/summary
  with:
    reports: fleet-deploy-reports
    registry: ${e('inputs.registry')}
    title: Rollback ${e("inputs.to || 'to the previous release'")}`,
    )}
`;
}

/** The generated files, formatted as the repository's prettier formats them. */
export async function generated(settings = loadSettings()) {
  const out = {};
  for (const [file, text] of [
    ['.github/workflows/deploy.yml', deployWorkflow(settings)],
    ['.github/workflows/rollback.yml', rollbackWorkflow(settings)],
  ])
    out[file] = await format(text, { parser: 'yaml', singleQuote: true, printWidth: 110 });
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  for (const [file, text] of Object.entries(await generated())) {
    writeFileSync(join(root, file), text);
    console.log(`wrote ${file}`);
  }
}
