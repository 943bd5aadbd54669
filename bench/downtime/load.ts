/**
 * The bounded load generator of bench:downtime: per proxy, one /health request at a time on a kept-alive
 * connection and one at a time on a fresh connection each (a pause of 10 ms between them: up to about
 * 100 requests/s each), and one /cgi-bin/slow request at a time. Nothing queues up: a proxy that hangs
 * slows the stream down instead of piling requests on it. Nothing is retried: a reset counts.
 */
import { Agent, get } from 'node:http';

export interface Sample {
  ms: number;
  ok: boolean;
  /** A failure: when (ISO time) and what (the error's code and message, or the status). */
  failure?: string;
}

/**
 * A failed slow request that lasted this long had been accepted and was cut mid-flight; one refused
 * (connection refused, the proxy's 502 for a down upstream) fails within milliseconds.
 */
const IN_FLIGHT_MS = 1000;
const PAUSE_MS = 10;

export interface LoadResult {
  kept: Sample[];
  fresh: Sample[];
  slow: Sample[];
}

export interface Figures {
  sent: number;
  failed: number;
  failedFresh: number;
  failedKept: number;
  p50: number;
  p99: number;
  max: number;
  slowSent: number;
  slowCut: number;
  /** What each failed request saw (at most 20). */
  failures: string[];
}

function once(port: number, path: string, agent: Agent | false, expect: (body: string) => boolean) {
  const t0 = performance.now();
  return new Promise<Sample>((resolve) => {
    const done = (ok: boolean, why = '') =>
      resolve({
        ms: performance.now() - t0,
        ok,
        ...(ok ? {} : { failure: `${new Date().toISOString()} ${path} ${why}` }),
      });
    const req = get({ host: '127.0.0.1', port, path, agent, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () =>
        done((res.statusCode ?? 500) < 500 && expect(body), `HTTP ${res.statusCode} ${body.slice(0, 80)}`),
      );
      res.on('error', (e: NodeJS.ErrnoException) => done(false, `${e.code} ${e.message} (mid-response)`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) =>
      done(false, `${e.code} ${e.message}${req.reusedSocket ? ' (kept-alive socket)' : ''}`),
    );
  });
}

export function loadStream(port: number) {
  let on = true;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const slowAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  const result: LoadResult = { kept: [], fresh: [], slow: [] };
  const loop = async (
    path: string,
    via: Agent | false,
    into: Sample[],
    expect: (b: string) => boolean,
    pause: number,
  ) => {
    while (on) {
      const s = await once(port, path, via, expect);
      into.push(s);
      await new Promise((r) => setTimeout(r, s.ok ? pause : 20)); // a refused request is retried, not spun on
    }
  };
  const loops = [
    loop('/health', agent, result.kept, () => true, PAUSE_MS),
    loop('/health', false, result.fresh, () => true, PAUSE_MS),
    loop('/cgi-bin/slow', slowAgent, result.slow, (body) => body.startsWith('slow'), 0),
  ];
  return {
    stop: async () => {
      on = false;
      await Promise.all(loops);
      agent.destroy();
      slowAgent.destroy();
      return result;
    },
  };
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

export function summarize(r: LoadResult): Figures {
  const ms = [...r.kept, ...r.fresh].map((s) => s.ms).sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  const failed = (s: Sample[]) => s.filter((x) => !x.ok).length;
  return {
    sent: r.kept.length + r.fresh.length + r.slow.length,
    failed: failed(r.kept) + failed(r.fresh) + failed(r.slow),
    failedFresh: failed(r.fresh),
    failedKept: failed(r.kept),
    p50: round(percentile(ms, 50)),
    p99: round(percentile(ms, 99)),
    max: round(ms.at(-1) ?? 0),
    slowSent: r.slow.length,
    slowCut: r.slow.filter((s) => !s.ok && s.ms >= IN_FLIGHT_MS).length,
    failures: [...r.kept, ...r.fresh, ...r.slow].flatMap((s) => (s.failure ? [s.failure] : [])).slice(0, 20),
  };
}
