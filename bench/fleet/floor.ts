/**
 * The floor: the fastest a plain script goes. One POSIX sh script per target, made of the very scripts
 * fleet-deploy runs (src/remote/: prepare, pullImages, update, finish) and a health poll with
 * curl on the server, sent over one `ssh host sh -s` per target under GNU `parallel -j C`. Built from the
 * same builders, it cannot drift from what ours runs; what it leaves out is ours' orchestration: one SSH
 * connection per server, the health probes through it, the report.
 *
 * Each builder's script runs in its own subshell (each starts by entering the tenant's directory and may
 * `exit`). Everything is in `main`, which runs last with stdin from /dev/null: the script itself arrives
 * on stdin (`sh -s`), so no command can eat the rest of it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageRef, versionOf } from '../../src/registry/release';
import { pullImages } from '../../src/remote/images';
import { finish } from '../../src/remote/lock';
import { prepare } from '../../src/remote/prepare';
import { update } from '../../src/remote/update';
import { quote, type Script } from '../../src/remote/shell';
import { DEPLOY_USER } from '../../src/testing';
import { envOf, HEALTH, type BenchTarget, type Fleet } from './servers';

/**
 * Polls the tenant's health endpoint on the server until `successes` answers in a row carry the version,
 * within the deadline (the gate ours applies through its SSH connection). Shared with the Ansible playbook.
 */
export function healthPoll(port: string, want: string): string {
  return `ok=0; end=$(( $(date +%s) + ${HEALTH.deadlineS} ))
while :; do
  if curl -fsS --max-time ${HEALTH.timeoutS} "http://127.0.0.1:${port}/health" 2>/dev/null | grep -q "\\"version\\": *\\"${want}\\""; then
    ok=$((ok + 1)); [ "$ok" -ge ${HEALTH.successes} ] && break
  else
    ok=0
  fi
  [ "$(date +%s)" -lt "$end" ] || exit 1
  sleep ${HEALTH.intervalS}
done`;
}

/** The image the target's .env names now: what a failed deploy rolls back to. */
function currentRef(t: BenchTarget): string {
  const m = /^(?:export\s+)?APP_IMAGE=(.*)$/m.exec(envOf(t));
  if (!m) throw new Error(`${t.dir}/.env has no APP_IMAGE`);
  return m[1]!.trim();
}

/** A builder's script in a subshell (a space after "$(", which "$((" would make arithmetic). */
const sub = (s: Script) => `( ${s.text} )`;

/** One target's deploy of `version`, as one sh script. */
export function floorScript(t: BenchTarget, version: string): string {
  const tenant = t.target.tenant;
  const next = imageRef(tenant.images[0]!, version);
  const prev = currentRef(t);
  const token = `floor-${randomBytes(8).toString('hex')}`;
  const owner = JSON.stringify({ actor: 'floor', version, token });
  const done = (outcome: string) =>
    sub(
      finish(tenant, {
        token,
        history: JSON.stringify({ actor: 'floor', target: t.target.id, outcome, from: prev, to: next }),
      }),
    );
  const port = String(t.appPort);
  return `#!/bin/sh
# ${t.target.id}: ${prev} -> ${next}, from the command builders of src/remote/
set -u
health() ( ${healthPoll('$1', '$2')}
)
main() {
  out=$( ${sub(prepare(tenant, { owner, leaseS: 3600 }))} ) || { code=$?; printf '%s\\n' "$out" >&2; exit $code; }
  if ! ${sub(pullImages(tenant, [next]))} >/dev/null; then
    ${done('failed')} >/dev/null; echo ${quote(`pull of ${next} failed`)} >&2; exit 30
  fi
  outcome=deployed
  if ! { ${sub(update(tenant, { APP_IMAGE: next }))} >/dev/null && health ${port} ${quote(version)}; }; then
    echo ${quote(`${next} is not healthy: rolling back to ${prev}`)} >&2
    outcome=rolled-back
    { ${sub(update(tenant, { APP_IMAGE: prev }))} >/dev/null && health ${port} ${quote(versionOf(prev))}; } || outcome=failed
  fi
  case $outcome in
    deployed) ${done('deployed')} ;;
    rolled-back) ${done('rolled-back')} ;;
    *) ${done('failed')} ;;
  esac >/dev/null
  echo "$outcome"
  [ "$outcome" = deployed ]
}
main </dev/null
`;
}

const SSH_OPTIONS = (f: Fleet) => [
  '-F',
  '/dev/null',
  '-i',
  f.key,
  '-o',
  'IdentitiesOnly=yes',
  '-o',
  'BatchMode=yes',
  '-o',
  `UserKnownHostsFile=${f.knownHosts}`,
  '-o',
  'StrictHostKeyChecking=yes',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'ConnectTimeout=20',
];

/**
 * Writes every target's script for `version` (from the fleet's state now) and returns the command that
 * runs them: `parallel -j JOBS ssh … sh -s < SCRIPT`, one line of a TSV (port, script) per target.
 */
export function floorArgv(
  fleet: Fleet,
  dir: string,
  version: string,
  jobs: number,
  joblog: string,
): string[] {
  mkdirSync(dir, { recursive: true });
  const rows = fleet.targets.map((t, k) => {
    const file = join(dir, `${k}-${t.id}.sh`);
    writeFileSync(file, floorScript(t, version));
    return `${t.server.port}\t${file}`;
  });
  const tsv = join(dir, 'targets.tsv');
  writeFileSync(tsv, `${rows.join('\n')}\n`);
  return [
    'parallel',
    '--will-cite',
    '-j',
    String(jobs),
    '--colsep',
    '\t',
    '--joblog',
    joblog,
    '-a',
    tsv,
    'ssh',
    ...SSH_OPTIONS(fleet),
    '-p',
    '{1}',
    `${DEPLOY_USER}@127.0.0.1`,
    'sh',
    '-s',
    '<',
    '{2}',
  ];
}
