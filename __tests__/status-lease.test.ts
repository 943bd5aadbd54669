/**
 * `status` reads a lock's lease as the deploy does (the server's clock, digits only) and judges it by
 * the lease, not by its age. The inspection is server text: a forged or malformed lease is no lease.
 */
import { parseInspection } from '../src/remote/status';
import { parseLeaseMarker } from '../src/remote/lock';

const owner = JSON.stringify({ token: 't', run: 'ci-run-7', actor: 'alice' });
const inspect = (lockSection: string) =>
  parseInspection(['@@env', '@@lock 10800', lockSection, '@@history', '@@end'].join('\n'));

test('the lease marker: two numbers of digits, else no lease', () => {
  expect(parseLeaseMarker('1700000600 1700000000')).toEqual({ expiresS: 1_700_000_600, leftS: 600 });
  expect(parseLeaseMarker('1700000000 1700000030')).toEqual({ expiresS: 1_700_000_000, leftS: -30 });
  for (const bad of [' 1700000000', '1700000000 ', '-5 1', '1e9 1', '1234567890123 1', 'x 1', '', undefined])
    expect(parseLeaseMarker(bad)).toBeUndefined();
});

test('a lock read back with its lease; a malformed lease is none; a forged marker in the owner loses to ours', () => {
  expect(inspect(`${owner}\n@@lease 1700000600 1700000000`).lock).toEqual({
    ageS: 10800,
    owner,
    lease: { expiresS: 1_700_000_600, leftS: 600 },
  });
  // no lease file: the server prints `@@lease  NOW`
  expect(inspect(`${owner}\n@@lease  1700000000`).lock?.lease).toBeUndefined();
  // the owner's text claims a lease that runs for ever; the tool's own marker comes after it
  expect(inspect(`${owner}\n@@lease 9999999999 1\n@@lease 1700000000 1700000030`).lock?.lease?.leftS).toBe(
    -30,
  );
});
