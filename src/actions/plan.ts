/** The plan action: registry → per-wave GitHub matrices. */
import { core } from './log';
import { matrices, planDeployment, planJson, waveOneRest } from '../plan/plan';
import { waveEnvironments } from '../plan/waves';
import { plural } from '../report/table';
import { setting } from '../settings';
import { actionInputs } from './inputs';
import { actionRegistry } from './single';

export const INPUTS = {
  registry: 'registry',
  select: 'select',
  waves: 'waves',
  maxPerJob: 'max-per-job',
  maxJobsPerServer: 'max-jobs-per-server',
  environment: 'environment',
  waveEnvironments: 'wave-environments',
} as const;
export const OUTPUTS = {
  matrices: 'matrices',
  waveOneRest: 'wave-1-rest',
  plan: 'plan',
  waveCount: 'wave-count',
  targetCount: 'target-count',
  targets: 'targets',
  cumulative: 'cumulative',
  environments: 'environments',
} as const;

export async function runPlan(): Promise<void> {
  const settings = {
    select: setting(actionInputs, 'select') ?? '',
    waves: setting(actionInputs, 'waves')!,
    maxPerJob: setting(actionInputs, 'maxPerJob')!,
    maxJobsPerServer: setting(actionInputs, 'maxJobsPerServer')!,
  };
  const plan = planDeployment(await actionRegistry(), settings);
  const environments = waveEnvironments(
    core.getInput(INPUTS.waveEnvironments),
    setting(actionInputs, 'environment')!,
    plan.plan.length,
    `input "${INPUTS.waveEnvironments}"`,
  );
  const perWave = matrices(plan);
  core.setOutput(OUTPUTS.matrices, JSON.stringify(perWave));
  core.setOutput(OUTPUTS.waveOneRest, waveOneRest(perWave));
  core.setOutput(OUTPUTS.plan, JSON.stringify(planJson(plan)));
  core.setOutput(OUTPUTS.waveCount, String(plan.plan.length));
  core.setOutput(OUTPUTS.targetCount, String(plan.total));
  core.setOutput(OUTPUTS.targets, JSON.stringify(plan.plan.flatMap((w) => w.targets.map((t) => t.id))));
  let sum = 0;
  core.setOutput(OUTPUTS.cumulative, JSON.stringify(plan.plan.map((w) => (sum += w.targets.length))));
  core.setOutput(OUTPUTS.environments, JSON.stringify(environments));
  core.info(
    `Planned ${plural(plan.total, 'target')} in ${plural(plan.plan.length, 'wave')}: ` +
      plan.plan
        .map((w, i) => `${w.targets.length} (${plural(w.jobs.length, 'job')}, ${environments[i]})`)
        .join(' → '),
  );
  core.info(
    `Matrix jobs: at most ${plural(settings.maxPerJob, 'target')} each, and at most ` +
      `${plural(settings.maxJobsPerServer, 'job')} of a wave on one server (` +
      (settings.maxJobsPerServer === 1
        ? "a server's tenants in a wave share one job and one SSH connection"
        : 'max-jobs-per-server') +
      ')',
  );
}
