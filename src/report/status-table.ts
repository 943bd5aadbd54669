/**
 * The fleet's status as rows of text (pure): one row per target under STATUS_HEADERS, for the terminal
 * table (`fleet-deploy status`) and the status action's job summary (`status-summary.ts`).
 */
import type { TargetStatus } from '../fleet/status';

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
