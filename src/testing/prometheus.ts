/**
 * A real Prometheus (Debian's `prometheus` package) on 127.0.0.1 for tests and benchmarks: it scrapes the endpoints the
 * test names every second, each with a `tenant` label, into a temporary TSDB that `stop()` removes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../sandbox/ports';

export const havePrometheus = spawnSync('prometheus', ['--version']).status === 0;

export interface TestPrometheus {
  url: string;
  /** The instant query's value per series, for waiting on data. */
  query(q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

export async function startPrometheus(
  targets: ReadonlyArray<{ tenant: string; port: number; path?: string }>,
): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'fd-prom-'));
  const port = await freePort();
  const jobs = targets.map((t) => ({
    job_name: `tenant-${t.tenant}`,
    metrics_path: t.path ?? '/metrics',
    static_configs: [{ targets: [`127.0.0.1:${t.port}`], labels: { tenant: t.tenant } }],
  }));
  // JSON is YAML: no YAML writer needed.
  const config = { global: { scrape_interval: '1s', scrape_timeout: '900ms' }, scrape_configs: jobs };
  writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config));
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (i === 100 || child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop,
    query: async (q) => {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await r.json()) as {
        data?: { result?: Array<{ metric: Record<string, string>; value: [number, string] }> };
      };
      return body.data?.result ?? [];
    },
  };
}

/** Waits (bounded) until `q` returns `n` series: Prometheus has scraped every target. */
export async function waitForSeries(p: TestPrometheus, q: string, n: number, tries = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if ((await p.query(q)).length >= n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Prometheus has no ${n} series for ${q}`);
}
