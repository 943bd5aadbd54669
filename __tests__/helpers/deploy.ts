import { deployFleet, type FleetOptions, type FleetReport } from '../../src/deploy/fleet';
import { systemClock, type Connector } from '../../src/ports';
import { planDeployment } from '../../src/plan/plan';
import { fetchUrl } from '../../src/http/fetch';
import type { Registry } from '../../src/registry';
import { SshConnector } from '../../src/ssh/transport';
import type { ClientKey } from './sshd';

export const testOptions = (version: string, extra: Partial<FleetOptions> = {}): FleetOptions => ({
  version,
  actor: 'jest',
  runId: 'test-run',
  lockWaitMs: 1000,
  commandTimeoutMs: 20_000,
  pullTimeoutMs: 30_000,
  pullAttempts: 2,
  recoveryWindowMs: 10_000,
  concurrency: 8,
  perServer: 4,
  maxFailurePercent: 0,
  ...extra,
});

export async function deploy(
  registry: Registry,
  key: ClientKey,
  version: string,
  opts: {
    select?: string;
    waves?: string;
    options?: Partial<FleetOptions>;
    privateKey?: string;
    onStep?: (e: any) => void;
    signal?: AbortSignal;
    /** Wraps the connector (a test counts or times the connections tried). */
    wrap?: (c: Connector) => Connector;
    /** The connect timeout and attempts (default 5 s × 2: a test fleet answers at once). */
    connect?: { timeoutMs: number; attempts: number };
  } = {},
): Promise<FleetReport & { handshakes: number }> {
  let handshakes = 0;
  const connector = new SshConnector({
    privateKey: opts.privateKey ?? key.privateKey,
    connectAttempts: opts.connect?.attempts ?? 2,
    connectTimeoutMs: opts.connect?.timeoutMs ?? 5000,
    onHandshake: () => handshakes++,
  });
  const plan = planDeployment(registry, { select: opts.select, waves: opts.waves });
  const report = await deployFleet(plan, testOptions(version, opts.options), {
    connector: opts.wrap ? opts.wrap(connector) : connector,
    clock: systemClock,
    urlGet: fetchUrl,
    onStep: opts.onStep,
    signal: opts.signal,
  });
  return { ...report, handshakes };
}
