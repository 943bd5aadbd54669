/**
 * `fleet-deploy unlock`: shows the deploy locks of the selected targets — who holds each, which run,
 * since when, how long ago its holder last touched it, and the switch it was making if it was cut off
 * there — and releases those whose holder is gone. A lock whose holder still looks at work (touched
 * within twice the longest quiet stretch of a live deploy) is only released with --force, said so.
 */
import { historyLine, isVersion } from '../deploy/history';
import { describeHolder, longestQuiet, parseLockOwner } from '../deploy/locks';
import type { Target } from '../registry/model';
import * as R from '../remote/lock';
import { table } from '../report/table';
import {
  flagOptions,
  fromFlags,
  identity,
  optionsHelp,
  remoteSettings,
  rolloutSettings,
  setting,
  synopsis,
} from '../settings';
import { eachServer } from '../fleet/each-server';
import type { Transport } from '../ports';
import { openRemote, type Values } from './remote';
import type { CliIO } from './io';

const FLAGS = [
  'registry',
  'select',
  'key',
  'knownHosts',
  'commandTimeoutMs',
  'pullTimeoutMs',
  'actor',
  'force',
] as const;

export const UNLOCK_OPTIONS = flagOptions(FLAGS);

export const UNLOCK_USAGE = `${synopsis('unlock', FLAGS)}

Shows each selected target's deploy lock: who holds it, which run, since when, how long ago its holder last
touched it, and the switch it was making if it was cut off there. Releases a lock whose holder is gone: its
lease has run out (a deploy renews its lease while it works; the next deploy also takes such a lock over
by itself), or, for a lock without a lease, not touched for twice the longest stretch a live deploy stays
quiet (from the timeouts below). A lock that still looks in use is left alone unless --force is given.
Releasing a lock cut off mid-switch records that in the target's history.

Options:
${optionsHelp(FLAGS)}

Exit codes: 0 nothing left locked, 1 a lock is still held, 2 bad input.`;

interface Row {
  target: Target;
  lock: string;
  holder: string;
  action: string;
  held: boolean;
}

/** What an interrupted deploy was switching, from the note it left in its lock (server text, checked). */
function interruptedSwitch(note: string | undefined): { from?: string; to: string } | undefined {
  if (!note) return undefined;
  try {
    const n = JSON.parse(note) as { from?: unknown; to?: unknown };
    if (typeof n.to !== 'string' || !isVersion(n.to)) return undefined;
    const from = typeof n.from === 'string' && isVersion(n.from) ? n.from : undefined;
    return { to: n.to, ...(from ? { from } : {}) };
  } catch {
    return undefined;
  }
}

export async function runUnlock(values: Values, io: CliIO): Promise<number> {
  const flags = fromFlags(values);
  const remote = await openRemote(remoteSettings(flags), io, { passphrase: io.env.FLEET_SSH_PASSPHRASE });
  const how: UnlockHow = {
    limits: rolloutSettings(flags, remote.targets),
    who: identity(flags, io.env, 'cli'),
    force: setting(flags, 'force') ?? false,
  };
  const results = await eachServer(
    remote.targets,
    remote.connector,
    (target, transport) => unlockTarget(target, transport, how),
    { concurrency: remote.concurrency },
  );
  const rows = remote.targets.map((target): Row => {
    const r = results.get(target.id)!;
    return r.ok ? r.value : { target, lock: 'unknown', holder: '', action: r.error, held: true };
  });
  io.stdout(
    `${table(
      ['TARGET', 'LOCK', 'HOLDER', 'ACTION'],
      rows.map((r) => [r.target.id, r.lock, r.holder, r.action]),
    )}\n`,
  );
  return rows.some((r) => r.held) ? 1 : 0;
}

/** The timeouts that say how long a live deploy stays quiet, who unlocks, and whether by force. */
interface UnlockHow {
  limits: ReturnType<typeof rolloutSettings>;
  who: ReturnType<typeof identity>;
  force: boolean;
}

type Switch = NonNullable<ReturnType<typeof interruptedSwitch>>;

/** One target's lock: read, judged, and released when its holder is gone (or by force). */
async function unlockTarget(target: Target, transport: Transport, how: UnlockHow): Promise<Row> {
  const { limits, force } = how;
  const t = target.tenant;
  const r = await transport.exec(R.inspectLock(t), { timeoutMs: limits.commandTimeoutMs });
  if (r.code !== 0)
    return { target, lock: 'unknown', holder: '', action: `cannot read: exit ${r.code}`, held: true };
  const lock = R.parseLock(r.stdout);
  if (!lock) return { target, lock: 'free', holder: '', action: '', held: false };
  const holder = describeHolder(lock.owner, lock.ageS);
  const quiet = longestQuiet(t, limits);
  // A lease says when its holder gives up; a lock without one (an older fleet-deploy's) is judged by age.
  const left = lock.leaseLeftS;
  const gone = left !== undefined ? left <= 0 : lock.ageS * 1000 >= 2 * quiet.ms;
  const cut = interruptedSwitch(lock.switchNote);
  const kept = (action: string): Row => ({ target, lock: lockState(cut), holder, action, held: true });
  if (!gone && !force)
    return kept(
      left !== undefined
        ? `kept: its lease runs ${left} s more (its holder renews it while it works; once it runs out the ` +
            `next deploy takes the lock over); --force releases it`
        : `kept: its holder may be at work (a live deploy can stay quiet ${Math.ceil(quiet.ms / 60_000)} ` +
            `min, ${quiet.step}); --force releases it`,
    );
  const owner = parseLockOwner(lock.owner);
  const entry = cut ? cutOffEntry(target, how.who, cut, owner?.run) : undefined;
  const script = owner?.token
    ? R.finish(t, { token: owner.token, ...(entry ? { history: entry } : {}) })
    : force
      ? R.breakLock(t)
      : undefined;
  if (!script) return kept('kept: its owner cannot be read; --force releases it');
  const done = await transport.exec(script, { timeoutMs: limits.commandTimeoutMs });
  const released = done.code === 0 && done.stdout.includes('@@unlock released');
  return {
    target,
    lock: lockState(cut),
    holder,
    action: released
      ? `released${gone ? '' : ' (forced: it looked in use)'}${entry ? ', history noted' : ''}`
      : `not released: ${done.code === 0 ? 'the lock changed hands meanwhile' : `exit ${done.code}`}`,
    held: !released,
  };
}

/** The LOCK column: held, or the switch it was cut off in and how to finish it. */
function lockState(cut: Switch | undefined): string {
  return cut
    ? `cut off while switching ${cut.from ?? 'nothing'} → ${cut.to}: it may run either; finish with ` +
        `\`fleet-deploy deploy --version ${cut.to}\`${cut.from ? ` or \`fleet-deploy rollback --to ${cut.from}\`` : ''}`
    : 'held';
}

/** The history line that records a deploy cut off during its switch, written as its lock is released. */
function cutOffEntry(target: Target, who: UnlockHow['who'], cut: Switch, run: string | undefined): string {
  const release = (version?: string) => ({
    refs: {},
    ...(version ? { version } : {}),
    imageIds: [],
    digests: [],
  });
  return historyLine({
    time: new Date(),
    actor: who.actor,
    run: who.runId,
    target: target.id,
    outcome: 'failed',
    previous: release(cut.from),
    next: release(cut.to),
    rollback: false,
    error: `deploy of ${run ?? 'an unknown run'} cut off during the switch; lock released by fleet-deploy unlock`,
  });
}
