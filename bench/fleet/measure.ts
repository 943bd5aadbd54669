/** What bench:fleet reads from the machine and the fleet around each run. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { envOf, type BenchTarget, type Server } from './servers';

const log = (msg: string) => process.stderr.write(`bench:fleet: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Total CPU seconds the whole machine spent (all processes: controller, sshd, shells, engine, apps). */
export function machineCpuS(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = user+nice+system+irq+softirq (steal is the
  // hypervisor's, not ours)
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) / 100;
}

/**
 * Waits (at most 60 s) until the machine is quiet — under 15% of one core busy over a second — so that
 * no other work (a build, a test run) shares the CPU with the run. Returns the last busy fraction.
 */
export async function waitQuiet(name: string): Promise<number> {
  let busy = 1;
  for (let i = 0; i < 30; i++) {
    const c0 = machineCpuS();
    await sleep(1000);
    busy = machineCpuS() - c0;
    if (busy < 0.15) return busy;
    if (i === 0)
      log(
        `${name}: the machine is busy (${Math.round(busy * 100)}% of a core), waiting for it to quiet down`,
      );
    await sleep(1000);
  }
  log(`${name}: WARNING: the machine stayed busy (${Math.round(busy * 100)}% of a core); measuring anyway`);
  return busy;
}

export interface VerbCost {
  n: number;
  cpuS: number;
  wallS: number;
}

/** Where each server's trace log ends now (BENCH_TRACE=1). */
export const traceOffsets = (servers: readonly Server[]) =>
  servers.map((s) => (s.traceLog && existsSync(s.traceLog) ? readFileSync(s.traceLog, 'utf8').length : 0));

/** "docker image inspect" from a traced command line (the tool, then up to two verbs, options skipped). */
function verbOf(tool: string, args: string): string {
  const words = args.trim().split(/\s+/);
  const verb: string[] = [];
  for (let i = 0; i < words.length && verb.length < 2; i++) {
    const w = words[i]!;
    if (['-f', '-p', '--format', '--file', '--project-name'].includes(w)) i++;
    else if (w.startsWith('-')) continue;
    else if (verb.length === 0) verb.push(w);
    else if (['image', 'container', 'compose'].includes(verb[0]!)) verb.push(w);
    else break;
  }
  return `${tool} ${verb.join(' ')}`;
}

/** The docker / docker-compose calls traced since `offsets`: count and CPU by verb. */
export function traceSince(servers: readonly Server[], offsets: readonly number[]): Record<string, VerbCost> {
  const byVerb: Record<string, VerbCost> = {};
  servers.forEach((s, k) => {
    if (!s.traceLog || !existsSync(s.traceLog)) return;
    for (const line of readFileSync(s.traceLog, 'utf8').slice(offsets[k]).split('\n')) {
      const m = /^([\d.]+) ([\d.]+) ([\d.]+) (\S+)(.*)$/.exec(line);
      if (!m) continue;
      const e = (byVerb[verbOf(m[4]!.split('/').at(-1)!, m[5]!)] ??= { n: 0, cpuS: 0, wallS: 0 });
      e.n++;
      e.cpuS += Number(m[2]) + Number(m[3]);
      e.wallS += Number(m[1]);
    }
  });
  return byVerb;
}

async function healthOf(t: BenchTarget): Promise<string> {
  try {
    const r = await fetch(`http://127.0.0.1:${t.appPort}/health`, { signal: AbortSignal.timeout(2000) });
    return (JSON.parse(await r.text()) as { version: string }).version;
  } catch {
    return 'down';
  }
}

/** How many targets run `version` (health answers it, .env holds it and the rest, no lock left). */
export async function onVersion(
  targets: readonly BenchTarget[],
  repo: string,
  version: string,
): Promise<number> {
  const states = await Promise.all(
    targets.map(async (t) => {
      const env = envOf(t);
      return (
        (await healthOf(t)) === version &&
        env.includes(`APP_IMAGE=${repo}:${version}\n`) &&
        env.includes('SECRET_TOKEN=keep-me') &&
        !existsSync(join(t.dir, '.fleet', 'lock'))
      );
    }),
  );
  return states.filter(Boolean).length;
}
