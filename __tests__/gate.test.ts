import { judge, runGate } from '../src/health/gate';
import { CrashJudge, describeCrash } from '../src/health/crash';
import { parseContainerRuns } from '../src/remote/containers';
import { ConnectionLost } from '../src/ports';
import type { HealthCheck } from '../src/registry';
import { FakeClock } from './helpers/fakes';

const check = (extra: Partial<HealthCheck> = {}): HealthCheck => ({
  port: 8080,
  path: '/health',
  expectStatus: 200,
  intervalMs: 1000,
  timeoutMs: 500,
  deadlineMs: 10_000,
  successes: 3,
  containerHealth: false,
  ...extra,
});
const res = (status: number, body: unknown) => ({
  status,
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('judge', () => {
  test('status', () => {
    expect(judge(check(), res(200, ''), 'v1')).toEqual({ ok: true });
    expect(judge(check(), res(503, ''), 'v1')).toEqual({ ok: false, reason: 'HTTP 503, expected 200' });
  });
  test('JSON fields by dotted path, with {version}', () => {
    const c = check({ json: { status: 'ok', 'build.version': '{version}', ready: true, workers: 4 } });
    expect(
      judge(c, res(200, { status: 'ok', build: { version: 'v2' }, ready: true, workers: 4 }), 'v2'),
    ).toEqual({ ok: true });
    expect(
      judge(c, res(200, { status: 'ok', build: { version: 'v1' }, ready: true, workers: 4 }), 'v2'),
    ).toEqual({ ok: false, reason: 'build.version is "v1", expected "v2"' });
    expect(judge(c, res(200, { status: 'ok', ready: true, workers: 4 }), 'v2')).toEqual({
      ok: false,
      reason: 'build.version is missing, expected "v2"',
    });
    expect(
      judge(c, res(200, { status: 'ok', build: { version: 'v2' }, ready: 'true', workers: 4 }), 'v2'),
    ).toEqual({ ok: false, reason: 'ready is "true", expected true' });
    expect(judge(c, res(200, '<html>'), 'v2')).toEqual({ ok: false, reason: 'body is not JSON: "<html>"' });
  });
  test('body text with {version}', () => {
    expect(judge(check({ bodyIncludes: 'version={version}' }), res(200, 'ok version=v3'), 'v3')).toEqual({
      ok: true,
    });
    expect(judge(check({ bodyIncludes: 'version={version}' }), res(200, 'ok version=v2'), 'v3').ok).toBe(
      false,
    );
  });
});

describe('runGate (fake clock)', () => {
  test('passes after N consecutive healthy probes', async () => {
    const clock = new FakeClock();
    const answers = [503, 503, 200, 200, 200];
    let i = 0;
    const g = await runGate(check(), 'v1', async () => res(answers[i++]!, ''), clock);
    // down from the first failed probe (t=0) to the first healthy one (t=2000)
    expect(g).toEqual({ ok: true, probes: 5, passed: 3, ms: 4000, downtimeMs: 2000 });
  });
  test('the downtime window: 0 when the first probe is healthy, from the first failure otherwise', async () => {
    const gate = async (answers: number[]) => {
      let i = 0;
      return (await runGate(check(), 'v1', async () => res(answers[i++]!, ''), new FakeClock())).downtimeMs;
    };
    expect(await gate([200, 200, 200])).toBe(0);
    expect(await gate([200, 503, 200, 200, 200])).toBe(0);
    expect(await gate([503, 200, 503, 200, 200, 200])).toBe(1000);
    expect(await gate([503, 503, 503, 503])).toBeUndefined();
  });
  test('a flapping service never passes and is called flapping', async () => {
    const clock = new FakeClock();
    let i = 0;
    const g = await runGate(check(), 'v1', async () => res(i++ % 2 ? 500 : 200, ''), clock);
    expect(g.ok).toBe(false);
    expect(g.reason).toBe(
      'not healthy within 10 s (flapping: 5 of 10 probes passed, never 3 in a row; last: HTTP 500, expected 200)',
    );
  });
  test('errors count as unhealthy; the deadline ends the gate', async () => {
    const clock = new FakeClock();
    const g = await runGate(
      check(),
      'v1',
      async () => Promise.reject(new Error('connect ECONNREFUSED')),
      clock,
    );
    expect(g).toMatchObject({
      ok: false,
      probes: 10, // at 0, 1, … 9 s: none starts at the deadline, with no time left
      passed: 0,
      reason: 'not healthy within 10 s (last: connect ECONNREFUSED)',
    });
  });
  test('no probe outlives the deadline: each is given at most the time left', async () => {
    // a probe double that takes all the time it is given and then fails, as one against a hung service
    const clock = new FakeClock();
    const given: number[] = [];
    const hung = async (timeoutMs: number) => {
      given.push(timeoutMs);
      await clock.sleep(timeoutMs);
      throw new Error(`no answer within ${timeoutMs} ms`);
    };
    const g = await runGate(
      check({ timeoutMs: 10_000, deadlineMs: 11_000, intervalMs: 500 }),
      'v1',
      hung,
      clock,
    );
    expect(given).toEqual([10_000, 500]);
    expect(g).toMatchObject({
      ok: false,
      probes: 2,
      ms: 11_000,
      reason: 'not healthy within 11 s (last: no answer within 10000 ms)',
    });
  });
  test('a last probe the deadline cut short does not hide the answer before it', async () => {
    const clock = new FakeClock();
    let n = 0;
    const probe = async (timeoutMs: number) => {
      if (++n === 1) {
        await clock.sleep(300);
        return { status: 500, body: '' };
      }
      await clock.sleep(timeoutMs);
      throw new Error(`no answer within ${timeoutMs} ms`);
    };
    const g = await runGate(
      check({ timeoutMs: 1000, deadlineMs: 1000, intervalMs: 500 }),
      'v1',
      probe,
      clock,
    );
    expect(n).toBe(2);
    expect(g.reason).toBe('not healthy within 1 s (last: HTTP 500, expected 200)');
  });
  test('a lost connection ends the gate at once', async () => {
    const clock = new FakeClock();
    const lost = new ConnectionLost();
    const g = await runGate(check(), 'v1', async () => Promise.reject(lost), clock);
    expect(g).toMatchObject({ ok: false, probes: 0, reason: 'the SSH connection was lost' });
  });
  test('cancellation stops the gate', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    ac.abort();
    expect(await runGate(check(), 'v1', async () => res(200, ''), clock, ac.signal)).toMatchObject({
      ok: false,
      reason: 'cancelled',
    });
  });
});

describe('the crash judge (src/health/crash.ts)', () => {
  const id = (c: string) => c.repeat(64);
  const run = (c: string, status: string, restarts: number, exitCode: number, policy = 'unless-stopped') =>
    `${id(c)} ${status} ${restarts} ${exitCode} ${policy}`;

  test('the engine lines are parsed; a line that is not one is left out', () => {
    expect(
      parseContainerRuns(
        `${run('a', 'running', 2, 0)}\n${id('b')} running; rm -rf / 1 0 no\nnoise\n${run('c', 'exited', 0, 3, '')}`,
      ),
    ).toEqual([
      { id: id('a'), status: 'running', restarts: 2, exitCode: 0, policy: 'unless-stopped' },
      { id: id('c'), status: 'exited', restarts: 0, exitCode: 3, policy: '' },
    ]);
  });

  test('a new container: restarted twice is a crash loop, once is not; the last exit code other than 0 is kept', () => {
    const judge = new CrashJudge(new Set());
    expect(judge.judge(parseContainerRuns(run('a', 'stopped', 1, 3)))).toBeUndefined();
    expect(judge.judge(parseContainerRuns(run('a', 'running', 2, 0)))).toEqual({
      id: id('a'),
      restarts: 2,
      exitCode: 3,
    });
  });

  test('a new container that exited with an error and no restart policy is failed; one that exited 0 (a one-off job) is not', () => {
    const judge = new CrashJudge(new Set());
    expect(judge.judge(parseContainerRuns(run('j', 'exited', 0, 0, 'no')))).toBeUndefined();
    expect(judge.judge(parseContainerRuns(run('a', 'exited', 0, 2, 'no')))).toEqual({
      id: id('a'),
      restarts: 0,
      exitCode: 2,
    });
    // an old container stopped before the deploy is not this release's
    expect(
      new CrashJudge(new Set([id('a')])).judge(parseContainerRuns(run('a', 'exited', 0, 2, 'no'))),
    ).toBeUndefined();
  });

  test('the message: restarts, seconds, exit code (or that it is not known), log lines', () => {
    expect(describeCrash({ id: id('a'), restarts: 4, exitCode: 3 }, 6, ['boom', 'bye'])).toBe(
      'container aaaaaaaaaaaa restarted 4 times in 6.0 s; last exit code 3; last log lines: boom | bye',
    );
    expect(describeCrash({ id: id('a'), restarts: 2 }, 1.25, [])).toBe(
      'container aaaaaaaaaaaa restarted 2 times in 1.3 s; last exit code not known (it was running again)',
    );
    expect(describeCrash({ id: id('a'), restarts: 0, exitCode: 1 }, 2, [])).toBe(
      'container aaaaaaaaaaaa exited after 2.0 s and is not restarted (no restart policy); last exit code 1',
    );
  });
});
