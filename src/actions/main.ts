/** One entry for every action: each action.yml runs a stub that calls runAction with its name. */
import { failStep } from './report-error';
import { runDeployAction } from './deploy';
import { runDeployPost } from './deploy-post';
import { runPlan } from './plan';
import { runWaveGate } from './gate';
import { runHealth } from './health';
import { runStatusAction } from './status';
import { runSummary } from './summary';

const ACTIONS: Record<string, () => Promise<void>> = {
  plan: runPlan,
  deploy: runDeployAction,
  'deploy-post': runDeployPost,
  rollback: () => runDeployAction('rollback'),
  gate: runWaveGate,
  summary: runSummary,
  health: runHealth,
  status: runStatusAction,
};

export async function runAction(name: string): Promise<void> {
  const action = ACTIONS[name];
  try {
    if (!action) throw new Error(`fleet-deploy: no action named ${JSON.stringify(name)}`);
    await action();
  } catch (error) {
    failStep(error);
  }
}
