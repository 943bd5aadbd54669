/**
 * A stand-in for a hub's heartbeat API (a fleet-wide endpoint an analysis check reads), for the sandbox
 * and the demo: GET /heartbeats?tenants=a,b asks each named tenant's service for its heartbeat (GET
 * /heartbeat on its port) and answers {"tenants": N, "silent": K, "dropPercent": K/N×100}. An analysis
 * HTTP check reads it: `failureCondition: "json.dropPercent > 3"`.
 */
import * as http from 'node:http';
import { fetchUrl } from '../http/fetch';

export interface SandboxHub {
  url: string;
  close(): Promise<void>;
}

async function beating(port: number): Promise<boolean> {
  try {
    const r = await fetchUrl(`http://127.0.0.1:${port}/heartbeat`, 2000);
    return r.status === 200 && (JSON.parse(r.body) as { ok?: unknown }).ok === true;
  } catch {
    return false; // no answer is no heartbeat
  }
}

/** Serves the hub on 127.0.0.1:`port` (0: any) for the tenants' heartbeat ports by tenant id. */
export async function startSandboxHub(ports: ReadonlyMap<string, number>, port = 0): Promise<SandboxHub> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    if (url.pathname !== '/heartbeats') return void res.writeHead(404).end();
    const ids = (url.searchParams.get('tenants') ?? '').split(',').filter((id) => ports.has(id));
    void Promise.all(ids.map((id) => beating(ports.get(id)!))).then((beats) => {
      const silent = beats.filter((b) => !b).length;
      const body = { tenants: ids.length, silent, dropPercent: ids.length ? (silent / ids.length) * 100 : 0 };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${bound}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
