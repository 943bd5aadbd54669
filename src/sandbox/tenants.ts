/**
 * A tenant's directory as every local fleet lays it out (the sandbox, tests, benchmarks), and the `docker`
 * that runs the SANDBOX container runtime on a local server.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { quote } from '../remote/shell';

/** One service on host networking, its image and port from .env (the sandbox runtime reads APP_PORT there). */
export const TENANT_COMPOSE = [
  'services:',
  '  app:',
  '    image: ${APP_IMAGE}',
  '    network_mode: host',
  '    environment:',
  '      APP_PORT: ${APP_PORT}',
  '',
].join('\n');

/**
 * The registry's `defaults.tenant` of a local fleet: the one image variable of TENANT_COMPOSE from
 * `repository`, and a health gate on GET /health that wants `{"status":"ok","version":"{version}"}` twice
 * in a row; `health` sets or overrides the gate's other fields (interval, timeout, deadline, …).
 */
export function tenantDefaults(repository: string, health: Readonly<Record<string, unknown>> = {}) {
  return {
    images: [{ variable: 'APP_IMAGE', repository }],
    health: { path: '/health', json: { status: 'ok', version: '{version}' }, successes: 2, ...health },
    minFreeDiskMb: 1,
  };
}

export interface TenantFiles {
  /** The first line of .env, a comment. */
  title: string;
  /** APP_IMAGE: the release running now. */
  image: string;
  /** APP_PORT: where the service answers /health. */
  port: number;
  /** More .env lines. */
  env?: Readonly<Record<string, string>>;
}

/** Creates the directory with docker-compose.yml and .env. */
export function writeTenantDir(dir: string, t: TenantFiles): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'docker-compose.yml'), TENANT_COMPOSE);
  const vars = { APP_IMAGE: t.image, APP_PORT: String(t.port), ...t.env };
  const lines = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
  writeFileSync(join(dir, '.env'), `# ${t.title}\n${lines.join('\n')}\n`);
}

/** Writes `binDir/docker`, a shell script that runs the sandbox runtime (a built runtime.js) with this node. */
export function writeDockerShim(binDir: string, runtime: string): void {
  mkdirSync(binDir, { recursive: true });
  writeFileSync(
    join(binDir, 'docker'),
    `#!/bin/sh\n# the SANDBOX container runtime (a test double of the docker CLI), standing in for ` +
      `docker here\nexec ${quote(process.execPath)} ${quote(runtime)} "$@"\n`,
  );
  chmodSync(join(binDir, 'docker'), 0o755);
}
