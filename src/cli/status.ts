/**
 * `fleet-deploy status`: per target, what runs (version, image, digest), the release before it, the last
 * deploy, container state and health now, a lock left behind, and drift. One connection per server; per
 * tenant one inspection (one exec) and, at the same time on the same connection, one health probe.
 */
import { eachServer } from '../deploy/each-server';
import type { HttpResponse, Transport } from '../deploy/ports';
import { describe } from '../deploy/shell';
import { hasDrift, targetStatus, waveDrift, type TargetStatus } from '../deploy/status';
import { EXIT, FORMAT_FLAGS, outputFormat } from './args';
import { judge } from '../health/gate';
import { fetchUrl } from '../http/fetch';
import type { Target } from '../registry/model';
import { inspectTenant, parseInspection } from '../remote/status';
import { plural, table } from '../report/table';
import { jsonText } from '../report/sanitize';
import type { CliIO } from './io';
import { flagOptions, REMOTE_FLAGS, type RemoteSettings } from '../settings';
import { openRemote, remoteFlags, remoteHelp, type Values } from './remote';

const STATUS_FLAGS = [...FORMAT_FLAGS, 'statusWaves', 'failOnDrift'] as const;

export const STATUS_USAGE = `fleet-deploy status [--select EXPR] [--waves SPEC] [--format table|json] [--json] [--fail-on-drift] [options]

For each selected target: the version, image and digest that run, the release before it and the last
deploy (from its history), the state of its containers (running, paused, stopped, restarting, missing),
health now (the containers' own checks and one probe of the registry's health check), a lock left in
place (its owner; live while its lease runs, "interrupted" once the lease ran out on the server's clock,
a lock without a lease judged by its age), and drift: it runs something other than its last recorded
release (.env or the running images), its Compose config-hash differs from the deployed one (when
recorded), or it runs another version than most of its wave. Reads only; takes no lock.

Options:
${remoteHelp(STATUS_FLAGS)}`;

export const STATUS_OPTIONS = flagOptions([...STATUS_FLAGS, ...REMOTE_FLAGS]);

/** One GET of the registry's health check (the answer is judged once the version is known). */
async function get(t: Target, transport: Transport): Promise<HttpResponse | Error> {
  const check = t.tenant.health;
  try {
    return check.url !== undefined
      ? await fetchUrl(check.url.replaceAll('{version}', ''), check.timeoutMs)
      : await transport.get(check.port!, check.path, check.timeoutMs);
  } catch (e) {
    return e as Error;
  }
}

function verdict(t: Target, answer: HttpResponse | Error, version: string): TargetStatus['probe'] {
  if (answer instanceof Error) return { ok: false, detail: answer.message };
  const v = judge(t.tenant.health, answer, version);
  return v.ok ? { ok: true, detail: `${answer.status}` } : { ok: false, detail: v.reason };
}

/** The status of every selected target, drift across waves included (the status action uses it too). */
export async function fleetStatus(settings: RemoteSettings, io: CliIO): Promise<TargetStatus[]> {
  const { targets, connector, concurrency, waveOf } = await openRemote(settings, io);
  const results = await eachServer(
    targets,
    connector,
    async (t, transport) => {
      // the inspection and the probe at once, on two channels of the one connection: one round trip
      const [r, answer] = await Promise.all([
        transport.exec(inspectTenant(t.tenant), { timeoutMs: 60_000 }),
        get(t, transport),
      ]);
      if (r.code !== 0) throw new Error(`cannot inspect: ${describe(r)}`);
      const status = targetStatus(t, waveOf.get(t.id) ?? 1, parseInspection(r.stdout));
      if (status.state !== 'missing') status.probe = verdict(t, answer, status.version ?? '');
      return status;
    },
    { concurrency, perServer: 4 },
  );
  const statuses = targets.map((t): TargetStatus => {
    const r = results.get(t.id)!;
    if (r.ok) return r.value;
    const empty = { refs: {}, images: [], digests: [], health: '', drift: [] };
    return { id: t.id, wave: waveOf.get(t.id) ?? 1, state: 'missing', ...empty, error: r.error };
  });
  waveDrift(statuses);
  return statuses;
}

const ago = (s: number) =>
  s >= 86_400
    ? `${Math.floor(s / 86_400)}d`
    : s >= 3600
      ? `${Math.floor(s / 3600)}h`
      : `${Math.floor(s / 60)}m`;

const span = (s: number) => (s < 120 ? `${s}s` : ago(s));

export function lockText(l: NonNullable<TargetStatus['lock']>): string {
  const who = [l.actor, l.run].filter(Boolean).join(', ') || l.owner.slice(0, 60);
  if (l.lease && !l.interrupted)
    return `locked by ${who}: a deploy at work, its lease runs ${span(l.lease.leftS)} more (until ${l.lease.until}, server clock)`;
  if (l.lease)
    return `INTERRUPTED deploy by ${who}: its lease ran out ${span(-l.lease.leftS)} ago (the next deploy takes the lock over)`;
  return `${l.interrupted ? 'INTERRUPTED deploy' : 'locked'} by ${who} (${ago(l.ageS)} old, no lease)`;
}

export function healthText(s: TargetStatus): string {
  const probe = s.probe ? (s.probe.ok ? `probe ok` : `probe FAILED: ${s.probe.detail}`) : '';
  return [s.health && s.health !== 'none' ? s.health : '', probe].filter(Boolean).join(', ');
}

export function statusRows(statuses: readonly TargetStatus[]): string[][] {
  return statuses.map((s) => [
    s.id,
    s.state,
    s.version ?? '',
    s.digests[0]?.replace(/^.*@sha256:/, '').slice(0, 12) ?? s.images[0]?.slice(7, 19) ?? '',
    s.previous ?? '',
    s.lastDeploy
      ? `${s.lastDeploy.outcome} ${s.lastDeploy.time?.slice(0, 16) ?? ''} ${s.lastDeploy.actor ?? ''}`.trim()
      : '',
    healthText(s),
    [s.error, ...s.drift, s.lock ? lockText(s.lock) : ''].filter(Boolean).join('; '),
  ]);
}

export const STATUS_HEADERS = [
  'TARGET',
  'STATE',
  'VERSION',
  'DIGEST',
  'PREVIOUS',
  'LAST DEPLOY',
  'HEALTH',
  'DRIFT / NOTES',
];

export async function runStatus(values: Values, io: CliIO): Promise<number> {
  const format = outputFormat(values, ['table', 'json']);
  const statuses = await fleetStatus(remoteFlags(values), io);
  const drifted = statuses.filter(hasDrift).length;
  if (format === 'json') io.stdout(`${jsonText(statuses, 2)}\n`);
  else {
    io.stdout(`${table(STATUS_HEADERS, statusRows(statuses))}\n`);
    io.stderr(
      `${plural(statuses.length, 'target')}: ${drifted} drifted, ${statuses.filter((s) => s.error).length} unreachable\n`,
    );
  }
  if (statuses.some((s) => s.error)) return 1;
  return values['fail-on-drift'] && drifted ? EXIT.drift : EXIT.ok;
}
