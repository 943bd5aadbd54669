/**
 * The probe from the runner (fetchUrl) against real HTTP servers on 127.0.0.1: one that never answers,
 * under the health gate (each probe gets at most the time left before the deadline), and one whose body
 * never ends (read up to the cap, then the connection is closed).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { systemClock } from '../src/ports';
import { runGate } from '../src/health/gate';
import { PROBE_BODY_LIMIT } from '../src/http/body';
import { fetchUrl } from '../src/http/fetch';
import type { HealthCheck } from '../src/registry';

const sockets = new Set<Socket>();
async function serve(handler: (res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((_req, res) => handler(res));
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/health` };
}
async function stop(server: Server) {
  sockets.forEach((s) => s.destroy());
  await new Promise((r) => server.close(r));
}

test('a service that never answers: the last probe is cut to the time left before the deadline', async () => {
  const { server, url } = await serve(() => undefined); // holds every request, answers none
  try {
    const check: HealthCheck = {
      url,
      path: '/health',
      expectStatus: 200,
      intervalMs: 300,
      timeoutMs: 1000,
      deadlineMs: 1500,
      successes: 1,
      containerHealth: false,
    };
    const given: number[] = [];
    const g = await runGate(check, 'v1', (ms) => (given.push(ms), fetchUrl(url, ms)), systemClock);
    // the first probe has its full second; the second only what is left of the 1.5 s (before: 1000 again)
    expect(given[0]).toBe(1000);
    expect(given).toHaveLength(2);
    expect(given[1]).toBeLessThan(1000);
    // the cut-short last probe does not hide the full probe's answer before it
    expect(g.reason).toBe(`not healthy within 1.5 s (last: no answer within ${given[0]} ms)`);
  } finally {
    await stop(server);
  }
}, 20_000);

test('an endless body: the probe reads the first PROBE_BODY_LIMIT bytes and closes the connection', async () => {
  let sent = 0;
  let closed!: () => void;
  const connectionClosed = new Promise<void>((r) => (closed = r));
  const chunk = Buffer.alloc(16 * 1024, 'x');
  const { server, url } = await serve((res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.on('close', () => closed());
    // writes for as long as the client reads: an endless body, paced by the client (no buffering here)
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) sent += chunk.length;
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  });
  try {
    const r = await fetchUrl(url, 60_000);
    expect(r.status).toBe(200);
    expect(r.body).toBe('x'.repeat(PROBE_BODY_LIMIT));
    await connectionClosed;
    // what the server managed to send before the client hung up: socket buffers, not gigabytes
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  } finally {
    await stop(server);
  }
}, 60_000);
