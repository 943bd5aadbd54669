/** The plan action: registry → per-wave GitHub matrices. */
import { readFile } from 'node:fs/promises';
import * as core from '@actions/core';
import { ConfigurationError } from '../errors';
import { matrices, planDeployment, planJson } from '../plan/plan';
import { parseRegistry } from '../registry';
import { plural } from '../report/table';
import { positiveInt, text } from './inputs';

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
  const registryPath = text(INPUTS.registry, 'servers/production.json');
  const settings = {
    select: text(INPUTS.select, ''),
    waves: text(INPUTS.waves, 'all'),
    maxPerJob: positiveInt(INPUTS.maxPerJob, 1),
  };
  let source: string;
  try {
    source = await readFile(registryPath, 'utf8');
  } catch (e) {
    throw new ConfigurationError([
      {
        path: [],
        source: `input "${INPUTS.registry}"`,
        message: `cannot read ${JSON.stringify(registryPath)}: ${(e as NodeJS.ErrnoException).code ?? e}`,
        hint: 'check out the repository first (actions/checkout) and give the path from its root',
      },
    ]);
  }
  const plan = planDeployment(parseRegistry(source, registryPath), settings);
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
