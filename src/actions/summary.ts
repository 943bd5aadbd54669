/**
 * The summary action: gathers every job's report, writes the job summary (renderSummary), sets outputs,
 * and optionally records a GitHub Deployment: `deployment: start` creates it and marks it in_progress;
 * `deployment: finish` (with the deployment-id from start) writes the summary and sets success/failure.
 */
import { readFile } from 'node:fs/promises';
import { core } from './log';
import * as github from '@actions/github';
import { failureAnnotations } from '../report/annotations';
import { mergeReports, renderSummary } from '../report/summary';
import { readReports } from './reports';
import { setting, SETTINGS } from '../settings';
import { actionInputs } from './inputs';
import { ConfigurationError } from '../errors';

function octokit() {
  const token = core.getInput('token');
  if (!token)
    throw new ConfigurationError([
      {
        path: [],
        source: 'input "token"',
        message: 'is required for deployments',
        hint: 'token: ${{ github.token }}, with permissions: deployments: write',
      },
    ]);
  return github.getOctokit(token);
}

type Totals = ReturnType<typeof mergeReports>['totals'];
/** The repository and environment of the GitHub Deployment. */
type Where = { owner: string; repo: string; environment: string };

export async function runSummary(): Promise<void> {
  const mode = setting(actionInputs, 'deployment')!;
  if (!['none', 'start', 'finish'].includes(mode))
    throw new ConfigurationError([
      {
        path: [],
        source: 'input "deployment"',
        message: `${JSON.stringify(mode)} is not one of none, start, finish`,
      },
    ]);
  const where: Where = { ...github.context.repo, environment: setting(actionInputs, 'environment')! };
  if (mode === 'start') return startDeployment(where);
  const { totals: t, success } = await summarize();
  if (mode === 'finish') await finishDeployment(where, t, success);
  if (!success && core.getInput('fail-on-failure') !== 'false')
    core.setFailed(`${t.targets - t.deployed - t.unchanged} of ${t.targets} targets were not deployed`);
}

/** `deployment: start`: a GitHub Deployment, in progress; its id is the output `deployment-id`. */
async function startDeployment({ owner, repo, environment }: Where): Promise<void> {
  const api = octokit();
  const created = await api.rest.repos.createDeployment({
    owner,
    repo,
    ref: setting(actionInputs, 'ref') ?? github.context.sha,
    environment,
    description: setting(actionInputs, 'title') ?? 'fleet-deploy',
    auto_merge: false,
    required_contexts: [],
    transient_environment: false,
  });
  const id = (created.data as { id?: number }).id;
  if (!id) throw new Error(`GitHub did not create a deployment: ${JSON.stringify(created.data)}`);
  await api.rest.repos.createDeploymentStatus({
    owner,
    repo,
    deployment_id: id,
    state: 'in_progress',
    environment,
    log_url: runUrl(),
  });
  core.setOutput('deployment-id', String(id));
}

/** Every job's report merged: the job summary, the failures' annotations and the outputs. */
async function summarize(): Promise<{ totals: Totals; success: boolean }> {
  const reports = await readReports(setting(actionInputs, 'reports')!, actionInputs.name(SETTINGS.reports));
  const merged = mergeReports(reports);
  // The gate's stop reason (matrix mode), when the reports themselves carry none (fleet mode does).
  const stopped = merged.stopped ?? setting(actionInputs, 'stopped');
  const report = { ...merged, ...(stopped ? { stopped } : {}) };
  const markdown = renderSummary(report, {
    title: setting(actionInputs, 'title') ?? `Deploy ${report.version}`,
    reportLink: setting(actionInputs, 'reportLink')!,
  });
  await core.summary.addRaw(markdown, true).write();
  for (const a of failureAnnotations(report, await registryText())) {
    const { message, ...properties } = a;
    core.error(message, properties);
  }
  const t = report.totals;
  const expected = Number(core.getInput('expected-targets').trim() || '0');
  const missing = Math.max(0, expected - t.targets);
  if (missing)
    core.warning(
      `${missing} of ${expected} planned targets have no result: their wave did not run (the rollout ` +
        `stopped or was cancelled) or their job died before reporting`,
    );
  const success = t.targets > 0 && missing === 0 && t.deployed + t.unchanged === t.targets;
  core.setOutput('success', String(success));
  core.setOutput('totals', JSON.stringify(t));
  core.setOutput('report', JSON.stringify(report));
  return { totals: t, success };
}

/** `deployment: finish`: the Deployment started before gets the rollout's outcome. */
async function finishDeployment(
  { owner, repo, environment }: Where,
  t: Totals,
  success: boolean,
): Promise<void> {
  const id = Number(core.getInput('deployment-id'));
  if (!Number.isInteger(id) || id <= 0)
    throw new ConfigurationError([
      {
        path: [],
        source: 'input "deployment-id"',
        message: `${JSON.stringify(core.getInput('deployment-id'))} is not a deployment id`,
        hint: 'pass the deployment-id output of the summary action run with deployment: start',
      },
    ]);
  const url = setting(actionInputs, 'environmentUrl') ?? '';
  await octokit().rest.repos.createDeploymentStatus({
    owner,
    repo,
    deployment_id: id,
    state: success ? 'success' : 'failure',
    environment,
    log_url: runUrl(),
    description:
      `${t.deployed} deployed, ${t.unchanged} unchanged, ${t['rolled-back']} rolled back, ${t.failed} failed, ${t.skipped} skipped`.slice(
        0,
        140,
      ),
    ...(url ? { environment_url: url } : {}),
  });
}

/** The registry file, to place each failure's annotation on its tenant's line; none when it cannot be read. */
async function registryText(): Promise<{ path: string; text: string } | undefined> {
  const path = core.getInput('registry').trim();
  if (!path) return undefined;
  try {
    return { path, text: await readFile(path, 'utf8') };
  } catch (e) {
    core.info(`Annotations without file lines: cannot read the registry ${path}: ${(e as Error).message}`);
    return undefined;
  }
}

function runUrl(): string {
  const c = github.context;
  return `${c.serverUrl}/${c.repo.owner}/${c.repo.repo}/actions/runs/${c.runId}`;
}
