/**
 * A tenant's reverse proxy in the sandbox: a test double of Caddy or nginx, named so, small enough to
 * read. It listens on 127.0.0.1 and sends each request to 127.0.0.1:PORT, PORT read from the tenant's
 * SANDBOX_PROXY_UPSTREAM file at every request: the blue-green strategy's `command` proxy switches it by
 * renaming a new file over that one (atomic), and reads it back. A request already forwarded finishes
 * on the upstream it started on, as with a real proxy.
 *
 * Also here: the request counter the demo shows, a steady stream of requests through such a proxy.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';

export const SANDBOX_PROXY_UPSTREAM = 'SANDBOX_PROXY_UPSTREAM';

/** The registry's `strategy.proxy` for a tenant behind a sandbox proxy (commands run in its directory). */
export const sandboxProxyCommands = {
  kind: 'command',
  switch:
    `printf '%s\\n' "$FLEET_UPSTREAM_PORT" > ${SANDBOX_PROXY_UPSTREAM}.tmp && mv -f ` +
    `${SANDBOX_PROXY_UPSTREAM}.tmp ${SANDBOX_PROXY_UPSTREAM}`,
  current: `cat ${SANDBOX_PROXY_UPSTREAM}`,
} as const;

export interface SandboxProxy {
  port: number;
  stop(): Promise<void>;
}

/** Starts the proxy for the tenant in `dir` on `port`, sending to `upstream` until switched. */
export async function startSandboxProxy(dir: string, port: number, upstream: number): Promise<SandboxProxy> {
  const file = join(dir, SANDBOX_PROXY_UPSTREAM);
  writeFileSync(`${file}.tmp`, `${upstream}\n`);
  renameSync(`${file}.tmp`, file);
  const server = http.createServer((req, res) => {
    const to = Number(readFileSync(file, 'utf8').trim());
    const out = http.request(
      // a connection per request: none idles on an old upstream, so its drain ends when its requests do
      { host: '127.0.0.1', port: to, path: req.url, method: req.method, headers: req.headers, agent: false },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway: the upstream did not answer\n');
    });
    req.pipe(out);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A steady stream of GET /health through `port` (one at a time, 20 ms apart); `stop()` counts them. */
export function countRequests(port: number) {
  let on = true;
  let sent = 0;
  let failed = 0;
  const loop = (async () => {
    while (on) {
      sent++;
      const ok = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) })
        .then(async (r) => (await r.arrayBuffer(), r.status < 500))
        .catch(() => false);
      if (!ok) failed++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return { sent, failed };
    },
  };
}
