/** `fleet-deploy sandbox up|down|status`: the local sandbox fleet (the demo is in demo.ts). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigurationError } from '../errors';
import { fetchUrl } from '../http/fetch';
import { parseRegistry, targetsOf } from '../registry';
import { plural, table } from '../report/table';
import { sandboxDirDefault, sandboxDown, sandboxPid, sandboxServe, sandboxUp } from '../sandbox/fleet';
import { wholeNumber } from '../values';
import type { CliIO } from './io';

type Values = Record<string, string | boolean | undefined>;

export const SANDBOX_USAGE = `fleet-deploy sandbox up|down|status [--dir DIR] [--servers N] [--tenants N]

A local SANDBOX fleet for trying fleet-deploy without servers, root or Docker: N sandbox servers on
127.0.0.1, each a real SSH endpoint with its own host key, whose tenants run on the sandbox container
runtime (each service a local process answering /health with its version). \`up\` writes DIR/registry.json
(host keys pinned), DIR/known_hosts and DIR/client_key, so these work against it:
  fleet-deploy deploy -r DIR/registry.json --key DIR/client_key --version v1
What a tag does there (the sandbox's image registry has every repository, so any image name deploys;
only the tag matters): missing-* fails to pull (manifest unknown), broken-* and bad-* answer HTTP 500
forever, slow-* answers 503 for 20 s, flaky-* flaps between 200 and 500; any other tag deploys and
answers {"status":"ok","version":TAG} on /health.
The registry's health gate allows 3 s per probe and 30 s in all, enough for a sandbox of many servers
deploying at high concurrency on a laptop's few cores; edit DIR/registry.json for another.

Options:
      --dir DIR     where the sandbox lives (default: $FLEET_SANDBOX_DIR or ./.fleet-sandbox)
      --servers N   sandbox servers (default 3)
      --tenants N   tenants per server (default 3)`;

export async function runSandbox(values: Values, positionals: string[], io: CliIO): Promise<number> {
  const dir = (values.dir as string | undefined) ?? sandboxDirDefault();
  const verb = positionals[0];
  switch (verb) {
    case 'up': {
      const servers = wholeNumber(values.servers as string | undefined, '--servers', 3);
      const tenants = wholeNumber(values.tenants as string | undefined, '--tenants', 3);
      const self = io.self ?? 'fleet-deploy';
      const r = await sandboxUp(dir, { servers, tenantsPerServer: tenants }, undefined, self);
      io.stdout(
        `Sandbox fleet up: ${plural(servers, 'server')} × ${plural(tenants, 'tenant')} on 127.0.0.1 ` +
          `(SANDBOX: local processes, not containers)\n  registry     ${r.registry}\n  key          ` +
          `${r.keyFile}\n  known_hosts  ${r.knownHosts}\nTry: ${self} deploy -r ${r.registry} --key ` +
          `${r.keyFile} --version v1\nStop: ${self} sandbox down --dir ${dir}\n`,
      );
      return 0;
    }
    case 'down': {
      const r = sandboxDown(dir);
      io.stdout(
        `Sandbox ${r.servers ? 'servers stopped' : 'servers were not running'}; ${plural(r.services, 'service')} stopped.\n`,
      );
      return 0;
    }
    case 'status': {
      const pid = sandboxPid(dir);
      if (!pid || !existsSync(join(dir, 'registry.json'))) {
        // a question answered, not a failure: exit 0 (`sandbox up` starts one)
        io.stdout(`No sandbox running in ${dir} (start one: ${io.self ?? 'fleet-deploy'} sandbox up).\n`);
        return 0;
      }
      const registry = parseRegistry(
        readFileSync(join(dir, 'registry.json'), 'utf8'),
        join(dir, 'registry.json'),
      );
      const rows = await Promise.all(
        targetsOf(registry).map(async (t) => {
          const h = await fetchUrl(`http://127.0.0.1:${t.tenant.health.port}/health`, 1000).catch(
            () => undefined,
          );
          return [
            t.id,
            `${t.server.host}:${t.server.port}`,
            t.tenant.ring,
            h ? `${h.status} ${h.body}` : 'not running',
          ];
        }),
      );
      io.stdout(
        `Sandbox running in ${dir} (pid ${pid})\n${table(['TARGET', 'SSH', 'RING', 'HEALTH'], rows)}\n`,
      );
      return 0;
    }
    case 'serve':
      await sandboxServe(dir);
      return 0;
    default:
      throw new ConfigurationError([
        {
          path: [],
          source: 'fleet-deploy sandbox',
          message: `${JSON.stringify(verb ?? '')} is not up, down or status`,
        },
      ]);
  }
}
