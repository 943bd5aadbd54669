/** bench:fleet's results: each tool's fastest run, the table, the targets, and the files. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Knobs, RunName } from './knobs';
import type { VerbCost } from './measure';
import { median } from '../lib/stats';

export interface Handshakes {
  perServer: number[];
  min: number;
  max: number;
  total: number;
}

export interface RunResult {
  round: number;
  /** The bundle the run started with. */
  dist: string;
  wallS: number;
  cpuS?: number;
  cpuMsPerTarget?: number;
  machineCpuS: number;
  busyBefore: number;
  engineCpuS?: number;
  trace?: Record<string, VerbCost>;
  exitCode: number | null;
  timedOut: boolean;
  deployed: number;
  handshakes: Handshakes;
  /** ours: the targets not deployed, with their errors (they explain a MISSED target). */
  failures?: string[];
  runs?: Omit<RunResult, 'trace'>[];
  wallsS?: number[];
}

export interface StepCost {
  n: number;
  totalMs: number;
  maxMs: number;
}

export interface Report {
  knobs: Knobs;
  engine: 'podman' | 'sandbox';
  results: Partial<Record<RunName, RunResult>>;
  /**
   * Ours' first run of this build, before the rounds: it compiles the bundle and writes the code cache
   * (src/cli/code-cache.ts) that the rounds — as a person's every later command — start from.
   */
  oursFirst?: RunResult;
  /** What ours runs per target (from --dry-run). */
  oursCommands?: Array<{ step: string; remote: boolean }>;
  oursSteps: Record<string, StepCost>;
  ansibleVersion: string;
  gitHead: string;
  distHash: string;
}

/**
 * Each tool's figures are those of its fastest run (anything else running on the machine only adds
 * time); every run is kept, and the handshake and deploy checks must hold in all of them.
 */
export function fastestOf(all: RunResult[]): RunResult {
  const fastest = [...all].sort((a, b) => a.wallS - b.wallS)[0]!;
  return {
    ...fastest,
    handshakes: {
      ...fastest.handshakes,
      min: Math.min(...all.map((x) => x.handshakes.min)),
      max: Math.max(...all.map((x) => x.handshakes.max)),
    },
    deployed: Math.min(...all.map((x) => x.deployed)),
    exitCode: all.find((x) => x.exitCode !== 0)?.exitCode ?? 0,
    ...(all.length > 1 ? { runs: all.map(({ trace: _t, ...x }) => x), wallsS: all.map((x) => x.wallS) } : {}),
  };
}

const f1 = (x: number | undefined, unit = '') =>
  x === undefined || Number.isNaN(x) ? 'n/a' : `${x.toFixed(1)}${unit}`;
const f2 = (x: number | undefined, unit = '') =>
  x === undefined || Number.isNaN(x) ? 'n/a' : `${x.toFixed(2)}${unit}`;

export const succeeded = (r: RunResult | undefined, targets: number) =>
  !!r && r.exitCode === 0 && r.deployed === targets;

const hsText = (r: RunResult | undefined) =>
  !r
    ? 'n/a'
    : r.handshakes.min === r.handshakes.max
      ? `${r.handshakes.min}`
      : `${r.handshakes.min}–${r.handshakes.max}`;

interface Check {
  name: string;
  value: string;
  result: 'met' | 'MISSED' | 'n/a';
}

const check = (name: string, value: string, met: boolean, available: boolean): Check => ({
  name,
  value,
  result: !available ? 'n/a' : met ? 'met' : 'MISSED',
});

/**
 * The median of the rounds' controller CPU per target (the rounds' spread is as large as a gain), over
 * the rounds that deployed every target (one that failed early did less work).
 */
export const medianCpuMsPerTarget = (x: RunResult, targets: number): number | undefined => {
  const all = (x.runs ?? [x])
    .filter((y) => succeeded(y, targets))
    .map((y) => y.cpuMsPerTarget)
    .filter((v): v is number => v !== undefined);
  return all.length ? median(all) : undefined;
};

function targetsOf(r: Report): Check[] {
  const { ours, floor, ansible } = r.results;
  const ok = succeeded(ours, r.knobs.targets);
  const cpu = ours ? medianCpuMsPerTarget(ours, r.knobs.targets) : undefined;
  const rounds = ours?.runs?.length ?? 1;
  return [
    check(
      'ours wall ≤ 1.05× the floor',
      ours && floor ? `${(ours.wallS / floor.wallS).toFixed(2)}×` : 'n/a',
      !!(ours && floor) && ours.wallS <= 1.05 * floor.wallS && ok,
      !!(ours && floor),
    ),
    check(
      'ours ≥ 2.5× faster than Ansible',
      ours && ansible ? `${(ansible.wallS / ours.wallS).toFixed(2)}×` : 'n/a',
      !!(ours && ansible) && ansible.wallS >= 2.5 * ours.wallS && ok,
      !!(ours && ansible),
    ),
    check(
      `ours CPU ≤ 25 ms per target (${rounds > 1 ? `median of ${rounds} rounds` : 'one round'})`,
      f1(cpu, ' ms'),
      (cpu ?? Infinity) <= 25 && ok,
      !!ours,
    ),
    check(
      "ours CPU ≥ 10× less than Ansible's controller",
      ours && ansible ? `${((ansible.cpuS ?? NaN) / (ours.cpuS ?? NaN)).toFixed(1)}×` : 'n/a',
      !!(ours && ansible) && (ansible.cpuS ?? 0) >= 10 * (ours.cpuS ?? Infinity),
      !!(ours && ansible),
    ),
    check(
      'exactly 1 SSH handshake per server (ours)',
      hsText(ours),
      !!ours && ours.handshakes.min === 1 && ours.handshakes.max === 1,
      !!ours,
    ),
  ];
}

const COLUMNS = [
  'run',
  'wall',
  '× floor',
  'CPU (controller)',
  'CPU/target',
  'CPU (machine)',
  'CPU (engine)',
  'handshakes/server',
  'on v2',
];

function rowsOf(r: Report): string[][] {
  const floor = r.results.floor;
  const targets = r.knobs.targets;
  const runs: Array<[string, RunResult | undefined]> = r.knobs.runs.map((name) => [name, r.results[name]]);
  if (r.oursFirst) runs.unshift(['ours, first run', r.oursFirst]);
  return runs.map(([name, x]) => {
    if (!x) return [name, 'not run', '', '', '', '', '', '', ''];
    return [
      name,
      f1(x.wallS, ' s'),
      floor ? `${(x.wallS / floor.wallS).toFixed(2)}×` : 'n/a',
      f2(x.cpuS, ' s'),
      f1(x.cpuMsPerTarget, ' ms'),
      f1(x.machineCpuS, ' s'),
      f1(x.engineCpuS, ' s'),
      hsText(x),
      `${x.deployed}/${targets}${x.exitCode === 0 ? '' : ` (exit ${x.timedOut ? 'timeout' : x.exitCode})`}`,
    ];
  });
}

function header(r: Report): string {
  const k = r.knobs;
  const engine =
    r.engine === 'podman' ? ' (podman + registry + docker-compose 1.29)' : ' (sandbox runtime double)';
  return `bench:fleet — ${k.servers} servers × ${k.tenants} tenants = ${k.targets} targets, concurrency ${k.concurrency}, engine ${r.engine}${engine}, ${cpus().length} cores, node ${process.version}${k.repeat > 1 ? `, fastest of ${k.repeat} rounds` : ''}`;
}

function notes(r: Report): string[] {
  return [
    'wall: the whole process, from start to exit.',
    ...(r.oursFirst
      ? [
          "ours, first run: ours' first deploy of this build, before the rounds, which compiles the command's bundle and writes its code cache (src/cli/code-cache.ts); the rounds of ours, like a person's every later command, start from that cache.",
        ]
      : []),
    'CPU (controller): user+sys of the process and its children (/usr/bin/time): node for ours; parallel, its shells and one ssh client per target for the floor; ansible-playbook and its worker forks for Ansible.',
    'CPU (machine): every process on this machine during the run (sshd, shells, docker/compose, the engine, the apps), from /proc/stat; CPU (engine): the podman API service and the registry.',
    `Every "server" shares this machine's ${cpus().length} cores, so no run can take less than CPU (machine) / ${cpus().length}.`,
    'handshakes: "Accepted publickey" lines in each sshd\'s log during the run.',
    `floor: one POSIX sh script per target made of the scripts ours runs (the builders of src/remote/, bench/fleet/floor.ts) plus a curl health poll, over \`ssh host sh -s\`, under \`parallel -j ${r.knobs.concurrency}\`.`,
    `ansible: ansible-core ${r.ansibleVersion}, forks ${r.knobs.concurrency}, pipelining, ControlPersist 60s, no facts; one shell task per step, looped over the host's tenants.`,
  ];
}

const remoteSteps = (r: Report) => (r.oursCommands ?? []).filter((c) => c.remote).map((c) => c.step);

function stepsText(r: Report): string {
  return Object.entries(r.oursSteps)
    .map(
      ([step, e]) =>
        `  ${step.padEnd(16)} ${String(e.n).padStart(4)} × mean ${f2(e.totalMs / e.n / 1000, ' s').padStart(8)}  max ${f2(e.maxMs / 1000, ' s')}`,
    )
    .join('\n');
}

function traceText(r: Report): string {
  let out =
    '\nremote docker / docker-compose calls per run (BENCH_TRACE=1; client CPU only, the engine is extra):\n';
  for (const name of r.knobs.runs) {
    const tr = r.results[name]?.trace;
    if (!tr) continue;
    out += `  ${name}\n`;
    for (const [verb, e] of Object.entries(tr).sort((a, b) => b[1].cpuS - a[1].cpuS))
      out += `    ${verb.padEnd(28)} ${String(e.n).padStart(4)} calls (${(e.n / r.knobs.targets).toFixed(1)}/target)  CPU ${f1(e.cpuS, ' s').padStart(7)}  (${Math.round((e.cpuS * 1000) / e.n)} ms each)\n`;
  }
  return out;
}

/** The terminal report. */
export function text(r: Report): string {
  const rows = rowsOf(r);
  const widths = COLUMNS.map((c, k) => Math.max(c.length, ...rows.map((x) => String(x[k]).length)));
  const line = (cells: string[]) =>
    cells.map((c, k) => (k === 0 ? c.padEnd(widths[k]!) : c.padStart(widths[k]!))).join('  ');
  const checks = targetsOf(r);
  const tw = Math.max(...checks.map((t) => t.name.length));
  const vw = Math.max(...checks.map((t) => t.value.length));
  let out = `${header(r)}\n\n${[line(COLUMNS), ...rows.map(line)].join('\n')}\n\ntargets\n`;
  out += `${checks.map((t) => `${t.name.padEnd(tw)}  ${t.value.padStart(vw)}  ${t.result}`).join('\n')}\n`;
  if (r.oursCommands)
    out += `\nours per target: ${remoteSteps(r).length} remote commands (${remoteSteps(r).join(', ')}) + health probes over forwarded channels, on 1 connection per server; the floor: 1 ssh session running 1 script\n`;
  if (Object.keys(r.oursSteps).length)
    out += `ours, where a target's time goes (from --report):\n${stepsText(r)}\n`;
  const busy = r.knobs.runs.filter((n) => (r.results[n]?.busyBefore ?? 0) >= 0.15);
  if (busy.length)
    out += `\nWARNING: the machine was busy with other work before ${busy.join(', ')}: those figures are not comparable\n`;
  if (r.knobs.trace) out += traceText(r);
  const failures = r.results.ours?.failures ?? [];
  if (failures.length) out += `ours, targets not deployed:\n${failures.map((f) => `  ${f}`).join('\n')}\n`;
  return `${out}\n${notes(r)
    .map((n) => `- ${n}`)
    .join('\n')}\n`;
}

/** The Markdown section for docs/PERFORMANCE.md. */
export function markdown(r: Report): string {
  const k = r.knobs;
  const today = new Date().toISOString().slice(0, 10);
  return [
    `## Fleet deploy — \`npm run bench:fleet\``,
    '',
    `${k.servers} sshd servers × ${k.tenants} tenants = ${k.targets} targets on one ${cpus().length}-core machine, engine ${r.engine}, v1 → v2 at concurrency ${k.concurrency}; each run starts from v1${k.repeat > 1 ? `; each tool's fastest of ${k.repeat} rounds` : ''} (${today}, git ${r.gitHead}, dist ${r.results.ours?.dist ?? r.distHash}).`,
    '',
    `| run | wall | × floor | CPU (controller) | CPU / target | CPU (machine) | CPU (engine) | handshakes / server | on v2 |`,
    `|---|--:|--:|--:|--:|--:|--:|--:|--:|`,
    ...rowsOf(r).map((x) => `| ${x.join(' | ')} |`),
    '',
    ...(r.oursCommands
      ? [
          `ours per target: ${remoteSteps(r).length} remote commands (${remoteSteps(r).join(', ')}) plus health probes through the SSH connection, on one connection per server; the floor: one ssh session per target running the same commands as one script.`,
          '',
        ]
      : []),
    '| target | value | |',
    '|---|--:|---|',
    ...targetsOf(r).map((t) => `| ${t.name} | ${t.value} | ${t.result} |`),
    '',
    ...notes(r).map((n) => `- ${n}`),
    '',
  ].join('\n');
}

/** Writes DIR/OUT.json and DIR/OUT.md. */
export function writeResults(dir: string, r: Report): void {
  mkdirSync(dir, { recursive: true });
  const k = r.knobs;
  const json = {
    date: new Date().toISOString(),
    machine: { cores: cpus().length, node: process.version },
    code: { gitHead: r.gitHead, distIndexSha256: r.distHash },
    fleet: {
      servers: k.servers,
      tenantsPerServer: k.tenants,
      targets: k.targets,
      concurrency: k.concurrency,
      engine: r.engine,
    },
    runs: r.results,
    ...(r.oursFirst ? { oursFirst: r.oursFirst } : {}),
    ours: { remoteCommandsPerTarget: remoteSteps(r).length, commands: r.oursCommands, steps: r.oursSteps },
    targets: targetsOf(r),
  };
  writeFileSync(join(dir, `${k.out}.json`), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(join(dir, `${k.out}.md`), markdown(r));
}
