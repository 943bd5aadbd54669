/** The plan action: registry → per-wave GitHub matrices. */
import { core } from './log';
import { matrices, planDeployment, planJson } from '../plan/plan';
import { plural } from '../report/table';
import { positiveInt, text } from './inputs';
import { actionRegistry } from './single';

export const INPUTS = {
  registry: 'registry',
  select: 'select',
  waves: 'waves',
  maxPerJob: 'max-per-job',
} as const;
export const OUTPUTS = {
  matrices: 'matrices',
  plan: 'plan',
  waveCount: 'wave-count',
  targetCount: 'target-count',
  targets: 'targets',
  cumulative: 'cumulative',
} as const;

export async function runPlan(): Promise<void> {
  const settings = {
    select: text(INPUTS.select, ''),
    waves: text(INPUTS.waves, 'all'),
    maxPerJob: positiveInt(INPUTS.maxPerJob, 1),
  };
  const plan = planDeployment(await actionRegistry(), settings);
  core.setOutput(OUTPUTS.matrices, JSON.stringify(matrices(plan)));
  core.setOutput(OUTPUTS.plan, JSON.stringify(planJson(plan)));
  core.setOutput(OUTPUTS.waveCount, String(plan.plan.length));
  core.setOutput(OUTPUTS.targetCount, String(plan.total));
  core.setOutput(OUTPUTS.targets, JSON.stringify(plan.plan.flatMap((w) => w.targets.map((t) => t.id))));
  let sum = 0;
  core.setOutput(OUTPUTS.cumulative, JSON.stringify(plan.plan.map((w) => (sum += w.targets.length))));
  core.info(
    `Planned ${plural(plan.total, 'target')} in ${plural(plan.plan.length, 'wave')}: ${plan.plan.map((w) => `${w.targets.length} (${plural(w.jobs.length, 'job')})`).join(' → ')}`,
  );
}
