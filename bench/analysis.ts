// npm run bench:analysis — how soon a failed analysis stops the rollout. A real Prometheus (scrape every
// second) scrapes a heartbeat gauge this script serves; the analysis engine (src/analysis, the code fleet
// mode and the workflow's gate run after a wave) measures a heartbeat-drop check through a long soak.
// At a random moment the gauge drops to 0; the script notes
//   bad    when the gauge dropped (the service's side),
//   seen   when an instant query first shows the drop (Prometheus' side: the scrape that saw it; polled
//          every 50 ms beside the analysis),
//   stop   when the analysis returned "failed → stop" (the rollout's side),
// and prints stop − seen against the check's interval (goal: at most one interval after the data shows
// it), and stop − bad against the soak a fixed wait between waves would sit through without looking.
// Writes its figures into docs/PERFORMANCE.md between the bench:analysis markers.
// Knobs: BENCH_INTERVALS (seconds, "1,2,5"), BENCH_REPEAT (5), BENCH_SOAK (seconds, 120).
//
// TypeScript, run by `node --require ./bench/lib/register-ts.cjs bench/analysis.ts`.
import { createServer } from 'node:http';
import { analyseWave } from '../src/analysis/run';
import type { Analysis } from '../src/analysis/model';
import { systemClock } from '../src/ports';
import { fetchUrl } from '../src/http/fetch';
import { freePort } from '../src/testing';
import {
  havePrometheus,
  startPrometheus,
  waitForSeries,
  type TestPrometheus,
} from '../src/testing/prometheus';
import { formatMarkdown, writeSection } from './lib/markdown';
import { median } from './lib/stats';

const INTERVALS = (process.env.BENCH_INTERVALS ?? '1,2,5').split(',').map(Number);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);
const SOAK_S = Number(process.env.BENCH_SOAK ?? 120);
const QUERY = '1 - avg(sandbox_heartbeat_ok{tenant=~"{tenants}"})';
const log = (msg: string) => process.stderr.write(`bench:analysis: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  intervalS: number;
  stopAfterSeenMs: number;
  stopAfterBadMs: number;
  measurements: number;
}

const analysisOf = (url: string, intervalS: number): Analysis => ({
  soakMs: SOAK_S * 1000,
  inconclusive: 'stop',
  rollback: 'wave',
  rings: {},
  checks: [
    {
      name: 'heartbeat-drop',
      source: { kind: 'prometheus', url, query: QUERY },
      failureCondition: 'value > 0.03',
      intervalMs: intervalS * 1000,
      failureLimit: 0,
      inconclusiveLimit: 1000,
      timeoutMs: 5000,
      dryRun: false,
    },
  ],
});

/** The first moment (after `from`) an instant query shows the heartbeat gone, polling every 50 ms. */
async function firstSeen(prom: TestPrometheus, until: { done: boolean }): Promise<number | undefined> {
  while (!until.done) {
    const r = await prom.query('1 - avg(sandbox_heartbeat_ok{tenant="canary"})').catch(() => []);
    if (r.length && Number(r[0]!.value[1]) > 0.03) return Date.now();
    await sleep(50);
  }
  return undefined;
}

async function oneRun(prom: TestPrometheus, gauge: { value: number }, intervalS: number): Promise<Run> {
  gauge.value = 1;
  await sleep(1500); // Prometheus has scraped the healthy value again
  const values = {
    wave: 1,
    rings: ['canary'],
    version: 'v2',
    previousVersion: 'v1',
    tenants: ['canary'],
    servers: ['s'],
    otherTenants: [],
  };
  const done = { done: false };
  const started = Date.now();
  const analysis = analyseWave(
    analysisOf(prom.url, intervalS),
    { values, targets: [] },
    { clock: systemClock, urlGet: fetchUrl },
  );
  // the drop comes at a random point of the soak's first intervals, not in step with the measurements
  await sleep(intervalS * 1000 * (1 + Math.random()));
  gauge.value = 0;
  const bad = Date.now();
  const seen = firstSeen(prom, done);
  const result = await analysis;
  const stop = Date.now();
  done.done = true;
  const seenAt = (await seen) ?? stop;
  if (result.outcome !== 'failed')
    throw new Error(`expected a failed analysis, got ${result.outcome}: ${result.reason}`);
  log(
    `interval ${intervalS} s: stop ${stop - seenAt} ms after the data showed it, ${stop - bad} ms after the drop (${((stop - started) / 1000).toFixed(1)} s into the soak)`,
  );
  return {
    intervalS,
    stopAfterSeenMs: stop - seenAt,
    stopAfterBadMs: stop - bad,
    measurements: result.checks[0]!.measurements.length,
  };
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main() {
  if (!havePrometheus) throw new Error('prometheus is not installed (npm run setup)');
  const gauge = { value: 1 };
  const port = await freePort();
  const server = createServer((_req, res) => {
    res
      .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
      .end(`sandbox_heartbeat_ok ${gauge.value}\n`);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const prom = await startPrometheus([{ tenant: 'canary', port }]);
  const runs: Run[] = [];
  try {
    await waitForSeries(prom, 'sandbox_heartbeat_ok', 1);
    for (const i of INTERVALS) for (let n = 0; n < REPEAT; n++) runs.push(await oneRun(prom, gauge, i));
  } finally {
    await prom.stop();
    server.close();
  }
  const rows = INTERVALS.map((i) => {
    const rs = runs.filter((r) => r.intervalS === i);
    const afterSeen = rs.map((r) => r.stopAfterSeenMs);
    const afterBad = rs.map((r) => r.stopAfterBadMs);
    return `| ${i} s | ${s(median(afterSeen))} | ${s(Math.max(...afterSeen))} | ${(Math.max(...afterSeen) / (i * 1000)).toFixed(2)}× | ${s(median(afterBad))} | ${s(Math.max(...afterBad))} | ${SOAK_S} s |`;
  });
  const md = `<!-- bench:analysis begin (written by npm run bench:analysis) -->

## Analysis between waves — \`npm run bench:analysis\`

How soon a failed analysis stops the rollout: a real Prometheus 2.42 scraping a heartbeat gauge every second, the analysis engine (what fleet mode and the workflow's gate run after a wave) measuring \`${QUERY}\` with \`failureCondition: value > 0.03\` through a ${SOAK_S} s soak; the gauge drops at a random moment. "Data shows it": the first instant query that returns the drop (polled every 50 ms). ${REPEAT} runs per interval, node ${process.version} (${new Date().toISOString().slice(0, 10)}).

| check interval | stop after the data shows it (median) | (worst) | worst ÷ interval | stop after the drop (median) | (worst) | a fixed wait between waves |
| --- | --: | --: | --: | --: | --: | --: |
${rows.join('\n')}

- Goal: the rollout stops at most one \`interval\` after the data shows the problem — met when "worst ÷ interval" is at most 1.00×. The measurement right after the data changes fails the check, and a failed check ends the soak at once (it does not wait for the other checks or the end of the soak).
- "After the drop" adds Prometheus' own delay (up to one scrape interval, 1 s here): tune the scrape interval and the query's range with the check's interval.
- A fixed wait between waves (Kamal's) spends the whole soak before the next wave and never stops it.

<!-- bench:analysis end -->`;
  process.stdout.write(`${md}\n`);
  writeSection(
    'docs/PERFORMANCE.md',
    '<!-- bench:analysis begin',
    '<!-- bench:analysis end -->',
    (await formatMarkdown(md)).trimEnd(),
  );
  log('wrote docs/PERFORMANCE.md');
}

main().catch((e: Error) => {
  log(e.stack ?? e.message);
  process.exit(1);
});
