/** When a lock may be called stale: never while a live deploy could still be between two touches of it. */
import { parseRegistry, targetsOf } from '../src/registry';
import { longestQuiet, staleLockProblem } from '../src/deploy/locks';
import { formatProblem } from '../src/errors';
import { baseRegistry } from './helpers/registry';

const limits = { commandTimeoutMs: 120_000, pullTimeoutMs: 900_000 };

function targets(tenant: Record<string, unknown> = {}) {
  const r = baseRegistry();
  Object.assign(r.servers[0].tenants[0], tenant);
  return targetsOf(parseRegistry(JSON.stringify(r), 'r.json'));
}

test('the longest quiet stretch: the switch and the gate after it, or a hook', () => {
  const plain = targets()[0]!.tenant;
  expect(longestQuiet(plain, limits)).toEqual({
    ms: 900_000 + plain.health.deadlineMs + plain.health.timeoutMs,
    step: 'the switch and the health gate',
  });
  expect(
    longestQuiet(targets({ health: { port: 8080, deadline: '20m', timeout: '5s' } })[0]!.tenant, limits),
  ).toEqual({ ms: 900_000 + 1_205_000, step: 'the switch and the health gate' });
  expect(
    longestQuiet(
      targets({ hooks: { preDeploy: [{ run: 'make migrate', timeout: '60m' }] } })[0]!.tenant,
      limits,
    ),
  ).toEqual({ ms: 3_600_000, step: 'a hook' });
});

test('an age under twice that is refused, naming the flag, the value, the step, the target and the fix', () => {
  const ts = targets({ hooks: { preDeploy: [{ run: 'make migrate', timeout: '60m' }] } });
  const p = staleLockProblem(90 * 60_000, ts, limits, '--break-stale-locks');
  expect(p && formatProblem(p)).toBe(
    `--break-stale-locks: 90m could break the lock of a deploy still at work: one may leave its lock untouched for up to 1h (a hook of ${ts[0]!.id}) (give at least twice that, e.g. 2h)`,
  );
  expect(staleLockProblem(2 * 3_600_000, ts, limits, '--break-stale-locks')).toBeUndefined();
  const plain = targets();
  const quiet = longestQuiet(plain[0]!.tenant, limits).ms;
  expect(staleLockProblem(2 * quiet, plain, limits, 'x')).toBeUndefined();
  expect(staleLockProblem(2 * quiet - 1000, plain, limits, 'x')?.hint).toBe(
    `give at least twice that, e.g. ${Math.ceil((2 * quiet) / 60_000)}m`,
  );
});
