/**
 * The bounded load generator of bench:downtime: per proxy, one /health request at a time (a pause of
 * 20 ms between them) and one /cgi-bin/slow request at a time. Nothing queues up: a proxy that hangs
 * slows the stream down instead of piling requests on it.
 */
export interface Sample {
  ms: number;
  ok: boolean;
}

/**
 * A failed slow request that lasted this long had been accepted and was cut mid-flight; one refused
 * (connection refused, the proxy's 502 for a down upstream) fails within milliseconds.
 */
const IN_FLIGHT_MS = 1000;

export interface LoadResult {
  fast: Sample[];
  slow: Sample[];
}

export interface Figures {
  sent: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
  slowSent: number;
  slowCut: number;
}

async function once(url: string, expect: (body: string) => boolean): Promise<Sample> {
  const t0 = performance.now();
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(15_000) });
    const body = await r.text();
    return { ms: performance.now() - t0, ok: r.status < 500 && expect(body) };
  } catch {
    return { ms: performance.now() - t0, ok: false };
  }
}

export function loadStream(port: number) {
  let on = true;
  const result: LoadResult = { fast: [], slow: [] };
  const loop = async (path: string, into: Sample[], expect: (body: string) => boolean, pauseMs: number) => {
    while (on) {
      const s = await once(`http://127.0.0.1:${port}${path}`, expect);
      into.push(s);
      await new Promise((r) => setTimeout(r, s.ok ? pauseMs : 20)); // a refused request is retried, not spun on
    }
  };
  const loops = [
    loop('/health', result.fast, () => true, 20),
    loop('/cgi-bin/slow', result.slow, (body) => body.startsWith('slow'), 0),
  ];
  return {
    stop: async () => {
      on = false;
      await Promise.all(loops);
      return result;
    },
  };
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

export function summarize(r: LoadResult): Figures {
  const ms = r.fast.map((s) => s.ms).sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    sent: r.fast.length + r.slow.length,
    failed: r.fast.filter((s) => !s.ok).length + r.slow.filter((s) => !s.ok).length,
    p50: round(percentile(ms, 50)),
    p99: round(percentile(ms, 99)),
    max: round(ms.at(-1) ?? 0),
    slowSent: r.slow.length,
    slowCut: r.slow.filter((s) => !s.ok && s.ms >= IN_FLIGHT_MS).length,
  };
}
