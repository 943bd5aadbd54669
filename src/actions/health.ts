/**
 * The health gate alone (actions/health), for teams that deploy their own way: probes each selected
 * target's health check — through SSH to the server's 127.0.0.1, or a public URL from the runner — until
 * it is stable or the deadline passes, with the same policy as a deploy's gate.
 */
import { core } from './log';
import { systemClock, type Transport } from '../ports';
import { runGate } from '../health/gate';
import { fetchUrl } from '../http/fetch';
import { planDeployment } from '../plan/plan';
import { checkTrust } from '../ssh/known-hosts';
import { SshConnector } from '../ssh/transport';
import { setting } from '../settings';
import { actionInputs, sshKey } from './inputs';
import { actionRegistry } from './single';

export async function runHealth(): Promise<void> {
  const registry = await actionRegistry();
  const targets = setting(actionInputs, 'targets');
  const select = targets
    ? `id=${targets
        .split(/[\s,]+/)
        .filter(Boolean)
        .join('|')}`
    : setting(actionInputs, 'select');
  const plan = planDeployment(registry, { select });
  const version = setting(actionInputs, 'expectedVersion') ?? '';
  const all = plan.plan.flatMap((w) => w.targets);
  const viaSsh = all.filter((t) => t.tenant.health.url === undefined);
  let connector: SshConnector | undefined;
  if (viaSsh.length) {
    const key = sshKey('health checks probed through SSH (health.port) need it');
    const knownHosts = setting(actionInputs, 'knownHostsText') ?? '';
    checkTrust(registry, plan, knownHosts);
    connector = new SshConnector({ privateKey: key, knownHosts });
  }
  const transports = new Map<string, Promise<Transport>>();
  const results: Array<{ id: string; ok: boolean; reason?: string }> = [];
  try {
    await Promise.all(
      all.map(async (t) => {
        const check = t.tenant.health;
        let probe;
        if (check.url !== undefined) probe = (timeoutMs: number) => fetchUrl(check.url!, timeoutMs);
        else {
          if (!transports.has(t.server.name)) transports.set(t.server.name, connector!.connect(t.server));
          const transport = transports.get(t.server.name)!;
          probe = async (timeoutMs: number) => (await transport).get(check.port!, check.path, timeoutMs);
        }
        try {
          const g = await runGate(check, version, probe, systemClock);
          results.push({ id: t.id, ok: g.ok, ...(g.reason ? { reason: g.reason } : {}) });
          core.info(
            `${t.id}: ${g.ok ? `healthy (${g.passed}/${g.probes} probes)` : `NOT healthy: ${g.reason}`}`,
          );
        } catch (e) {
          results.push({ id: t.id, ok: false, reason: (e as Error).message });
          core.info(`${t.id}: NOT healthy: ${(e as Error).message}`);
        }
      }),
    );
  } finally {
    await Promise.all([...transports.values()].map(async (p) => (await p.catch(() => undefined))?.close()));
  }
  const unhealthy = results.filter((r) => !r.ok);
  core.setOutput('healthy', String(unhealthy.length === 0));
  core.setOutput('results', JSON.stringify(results.sort((a, b) => (a.id < b.id ? -1 : 1))));
  if (unhealthy.length)
    core.setFailed(
      `${unhealthy.length} of ${results.length} target(s) not healthy: ${unhealthy.map((u) => `${u.id} (${u.reason})`).join('; ')}`,
    );
}
