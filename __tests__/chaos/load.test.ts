/**
 * Load, on the sandbox fleet (src/sandbox: SSH servers served by one background process, each tenant's
 * service a process of the sandbox runtime): 200 targets (20 servers × 10 tenants) at concurrency 50.
 * The bundled CLI deploys v1 (starting every service) with its peak memory read at its exit by a preload
 * (bench/lib/rusage.mjs, as bench:scale does); then deployFleet in this process deploys v2, with the open
 * file descriptors and listeners counted before and after.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseRegistry } from '../../src/registry';
import { deploy } from '../helpers/deploy';
import { scenario } from './lib/record';

const TARGETS = 200;
const CONCURRENCY = 50;
const MAX_RSS_MB = 250;

const openFds = () => readdirSync('/proc/self/fd').length;
/** Listeners on the process and on its standard streams: what a leak of per-target handlers would grow. */
const listeners = () =>
  [process, process.stdout, process.stderr].reduce(
    (n, e) => n + e.eventNames().reduce((m, name) => m + e.listenerCount(name), 0),
    0,
  );

describe('load', () => {
  let dir: string;
  let up: { registry: string; keyFile: string; knownHosts: string };
  /** The shipped CLI's sandbox command (the sandbox runs from the built bundle). */
  const sandbox = (...args: string[]) =>
    spawnSync(process.execPath, ['dist/cli.js', 'sandbox', ...args, '--dir', dir], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '' },
      timeout: 120_000,
    });
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fd-chaos-load-'));
    const r = sandbox('up', '--servers', '20', '--tenants', '10');
    if (r.status !== 0) throw new Error(`sandbox up failed: ${r.stderr}`);
    // A probe's answer waits for a core while 50 deploys share two: the gate is given room (the sandbox's
    // help says to edit its registry for another), since what is measured here is our process.
    const file = join(dir, 'registry.json');
    writeFileSync(
      file,
      readFileSync(file, 'utf8')
        .replaceAll('"timeout": "3s"', '"timeout": "10s"')
        .replaceAll('"deadline": "30s"', '"deadline": "60s"'),
    );
    up = {
      registry: join(dir, 'registry.json'),
      keyFile: join(dir, 'client_key'),
      knownHosts: join(dir, 'known_hosts'),
    };
  }, 120_000);
  afterAll(() => {
    if (dir) sandbox('down'); // the background server and every service, by PID
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  scenario(
    'load',
    `${TARGETS} targets at concurrency ${CONCURRENCY} on sandbox servers`,
    `every outcome correct; peak memory of the deploying process under ${MAX_RSS_MB} MB; no file-descriptor or listener leak`,
    async () => {
      // 1. The bundled CLI, its peak resident memory written at its exit.
      const rusage = join(dir, 'rusage.json');
      const report = join(dir, 'report.json');
      const cli = spawnSync(
        process.execPath,
        [
          '--import',
          resolve('bench/lib/rusage.mjs'),
          'dist/cli.js',
          'deploy',
          '--version',
          'v1',
          '-r',
          up.registry,
          '--key',
          up.keyFile,
          '--known-hosts',
          up.knownHosts,
          '--concurrency',
          String(CONCURRENCY),
          '--per-server',
          '10',
          '--report',
          report,
        ],
        {
          encoding: 'utf8',
          env: { PATH: process.env.PATH ?? '', USER: 'op', BENCH_RUSAGE_FILE: rusage, NO_COLOR: '1' },
          timeout: 180_000,
        },
      );
      const first = JSON.parse(readFileSync(report, 'utf8')) as {
        targets: Array<{ id: string; outcome: string; error?: string }>;
      };
      expect(
        first.targets.filter((t) => t.outcome !== 'deployed').map((t) => `${t.id}: ${t.outcome} ${t.error}`),
      ).toEqual([]);
      expect(cli.status).toBe(0);
      expect(first.targets).toHaveLength(TARGETS);
      const peakMb = Math.round(
        (JSON.parse(readFileSync(rusage, 'utf8')) as { maxRssKiB: number }).maxRssKiB / 1024,
      );
      expect(peakMb).toBeLessThan(MAX_RSS_MB);

      // 2. In this process: descriptors and listeners before and after a whole deploy.
      const registry = parseRegistry(readFileSync(up.registry, 'utf8'), up.registry);
      const key = { file: up.keyFile, privateKey: readFileSync(up.keyFile, 'utf8'), publicKey: '' };
      const fdsBefore = openFds();
      const listenersBefore = listeners();
      const r = await deploy(registry, key, 'v2', {
        // the CLI's own connect defaults: 50 handshakes at once on 2 busy cores can take over 5 s
        connect: { timeoutMs: 20_000, attempts: 3 },
        options: {
          concurrency: CONCURRENCY,
          perServer: 10,
          lockWaitMs: 5000,
          commandTimeoutMs: 60_000,
          pullTimeoutMs: 60_000,
        },
      });
      expect(
        r.targets.filter((t) => t.outcome !== 'deployed').map((t) => `${t.id}: ${t.outcome} ${t.error}`),
      ).toEqual([]);
      expect(r.targets).toHaveLength(TARGETS);
      await new Promise((res) => setTimeout(res, 200)); // sockets closed by the peer finish closing
      const fdLeak = openFds() - fdsBefore;
      const listenerLeak = listeners() - listenersBefore;
      expect(fdLeak).toBeLessThanOrEqual(0);
      expect(listenerLeak).toBe(0);
      return {
        measured: `${TARGETS} of ${TARGETS} deployed, twice; peak memory under ${MAX_RSS_MB} MB; 0 descriptors and 0 listeners leaked`,
        cases: TARGETS * 2,
        detail: `CLI peak RSS ${peakMb} MB; fds ${fdsBefore} → ${fdsBefore + fdLeak}; listeners ${listenersBefore} → ${listenersBefore + listenerLeak}`,
      };
    },
    300_000,
  );
});
