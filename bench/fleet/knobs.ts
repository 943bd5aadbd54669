/** bench:fleet's knobs, from BENCH_* variables (see bench/fleet.ts), checked before anything starts. */

export type RunName = 'ours' | 'floor' | 'ansible';
export const RUN_NAMES: readonly RunName[] = ['ours', 'floor', 'ansible'];

export interface Knobs {
  servers: number;
  tenants: number;
  targets: number;
  concurrency: number;
  runTimeoutMs: number;
  /** Rounds of all runs; each tool is reported by its fastest. */
  repeat: number;
  engine: 'auto' | 'podman' | 'sandbox';
  /** The runs, in order. */
  runs: RunName[];
  keep: boolean;
  /** bench/results/OUT.json and OUT.md */
  out: string;
  trace: boolean;
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, dflt: number, min = 1): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${v}: expected a whole number ≥ ${min}`);
  return n;
}

function runsOf(text: string): RunName[] {
  const asked = text.split(',').map((s) => s.trim());
  const unknown = asked.filter((r) => !(RUN_NAMES as readonly string[]).includes(r));
  if (unknown.length)
    throw new Error(
      `BENCH_ONLY=${text}: unknown run ${unknown.join(', ')}; expected ${RUN_NAMES.join(', ')}`,
    );
  return [...new Set(asked)] as RunName[];
}

export function readKnobs(env: NodeJS.ProcessEnv = process.env): Knobs {
  const servers = wholeNumber(env, 'BENCH_SERVERS', 20);
  const tenants = wholeNumber(env, 'BENCH_TENANTS', 2);
  const engine = env.BENCH_ENGINE || 'auto';
  if (engine !== 'auto' && engine !== 'podman' && engine !== 'sandbox')
    throw new Error(`BENCH_ENGINE=${engine}: expected podman or sandbox`);
  const out = env.BENCH_OUT || 'fleet-latest';
  if (!/^[\w.-]+$/.test(out)) throw new Error(`BENCH_OUT=${out}: a file name without directories`);
  return {
    servers,
    tenants,
    targets: servers * tenants,
    concurrency: wholeNumber(env, 'BENCH_CONCURRENCY', 20),
    runTimeoutMs: wholeNumber(env, 'BENCH_RUN_TIMEOUT_S', 900) * 1000,
    repeat: wholeNumber(env, 'BENCH_REPEAT', 1),
    engine,
    runs: runsOf(env.BENCH_ONLY || RUN_NAMES.join(',')),
    keep: env.BENCH_KEEP === '1',
    out,
    trace: env.BENCH_TRACE === '1',
  };
}
