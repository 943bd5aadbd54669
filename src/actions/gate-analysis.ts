/**
 * The reusable workflow's analysis between waves, in the gate job: the registry's `rollout.analysis`,
 * measured through the wave's soak by the same code as fleet mode (src/deploy/analysis.ts). The soak
 * happens here, not in a sleeping deploy job. With the SSH key, command checks run on the wave's targets
 * and a failed analysis rolls back by the registry's policy (a rollback deploy of those targets); without
 * it, command checks are inconclusive and nothing is rolled back.
 */
import { core } from './log';
import { actionInputs, optionalSshKey } from './inputs';
import { actionRegistry } from './single';
import { logAnalysis } from './deploy';
import type { WaveAnalysis } from '../analysis';
import { analyseFleetWave, toRollBack } from '../deploy/analysis';
import { deployFleet, type FleetReport } from '../deploy/fleet';
import { systemClock } from '../ports';
import { Session } from '../deploy/session';
import { fetchUrl } from '../http/fetch';
import { planDeployment, type Plan } from '../plan/plan';
import type { Registry } from '../registry';
import { identity, registryLogin, rolloutSettings, setting } from '../settings';
import { checkTrust } from '../ssh/known-hosts';
import { SshConnector } from '../ssh/transport';

export interface GateAnalysis {
  analysis: WaveAnalysis;
  /** What the rollback did, when the analysis failed. */
  rolledBack?: string;
}

/** The SSH connector of the gate, when the workflow gave it the key; checked against the pins first. */
function connector(registry: Registry, plan: Plan): SshConnector | undefined {
  const privateKey = optionalSshKey();
  if (privateKey === undefined) return undefined;
  const knownHosts = setting(actionInputs, 'knownHostsText') ?? '';
  checkTrust(registry, plan, knownHosts);
  return new SshConnector({ privateKey, knownHosts });
}

/** Rolls back the targets the policy names, as the rollback workflow would: a deploy to their previous release. */
async function rollBack(
  registry: Registry,
  plan: Plan,
  ids: readonly string[],
  ssh: SshConnector,
  reason: string,
): Promise<string> {
  const targets = plan.plan.flatMap((w) => w.targets).filter((t) => ids.includes(t.id));
  const login = registryLogin(actionInputs, process.env);
  for (const l of login?.logins ?? []) core.setSecret(l.password);
  const backPlan = planDeployment(registry, { select: `id=${targets.map((t) => t.id).join('|')}` });
  const report: FleetReport = await deployFleet(
    backPlan,
    {
      version: 'previous',
      rollback: { reason },
      ...identity(actionInputs, process.env, 'action'),
      ...rolloutSettings(actionInputs, targets),
      ...(login ? { registry: login } : {}),
      maxFailurePercent: 100,
    },
    { connector: ssh, clock: systemClock, urlGet: fetchUrl },
  );
  const ok = report.targets.filter((r) => r.outcome === 'deployed' || r.outcome === 'unchanged');
  const bad = report.targets.filter((r) => !ok.includes(r)).map((r) => `${r.id}: ${r.error ?? r.outcome}`);
  return `rolled back ${ok.length} of ${report.targets.length} target(s)${bad.length ? `; not: ${bad.join('; ')}` : ''}`;
}

/** The analysis after `wave`, when the registry has one; undefined when it has none. */
export async function analyseInGate(
  wave: number,
  reports: readonly FleetReport[],
): Promise<GateAnalysis | undefined> {
  if (setting(actionInputs, 'analysisRegistry') === undefined) return undefined;
  const registry = await actionRegistry('analysisRegistry');
  if (!registry.analysis) return undefined;
  const plan = planDeployment(registry, {
    select: setting(actionInputs, 'select'),
    waves: setting(actionInputs, 'waves'),
  });
  const w = plan.plan[wave - 1];
  if (!w || wave >= plan.plan.length) return undefined;
  const results = reports.flatMap((r) => r.targets);
  const version =
    setting(actionInputs, 'expectedVersion') ?? results.find((r) => r.next?.version)?.next?.version ?? '';
  const ssh = connector(registry, plan);
  const sessions = new Map<string, Session>();
  if (ssh)
    for (const t of w.targets)
      sessions.set(t.server.name, new Session(t.server, ssh, systemClock, 10_000, 1));
  try {
    const analysis = await analyseFleetWave(
      { plan, version, sessions, ports: { clock: systemClock, urlGet: fetchUrl }, onAnalysis: logAnalysis },
      registry.analysis,
      w,
      results.filter((r) => r.wave === wave),
    );
    if (analysis.outcome !== 'failed') return { analysis };
    const ids = toRollBack(registry.analysis.rollback, wave, results).map((r) => r.id);
    if (ids.length === 0)
      return { analysis, rolledBack: `rollback policy ${registry.analysis.rollback}: nothing rolled back` };
    if (!ssh)
      return { analysis, rolledBack: 'not rolled back: the gate has no ssh-key (run the rollback workflow)' };
    return {
      analysis,
      rolledBack: await rollBack(
        registry,
        plan,
        ids,
        ssh,
        `analysis after wave ${wave} failed: ${analysis.reason}`,
      ),
    };
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.close()));
  }
}
