/** A sandbox SSH endpoint (ssh2's server, in the test process) and the registry entry that reaches it. */
import { parseRegistry } from '../../src/registry';
import type { Server } from '../../src/registry/model';
import { generateKeyPair } from '../../src/sandbox/ssh-server';

export const client = generateKeyPair('test-client');
export const host = generateKeyPair('test-host');

/** The registry's view of a sandbox server on 127.0.0.1:port, its host key pinned. */
export function sandboxServer(port: number): Server {
  const reg = {
    servers: [
      {
        name: 'sb',
        host: '127.0.0.1',
        port,
        region: 'local',
        hostKey: host.publicKey.split(' ').slice(0, 2).join(' '),
        tenants: [],
      },
    ],
  };
  return parseRegistry(JSON.stringify(reg), 'sb.json').servers[0]!;
}
