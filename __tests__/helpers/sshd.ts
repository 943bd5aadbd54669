/**
 * Real OpenSSH servers for integration tests (the fleet fixture's, src/testing/openssh.ts), logging in the
 * deploy user, with the SANDBOX container runtime (the docker double, dist/sandbox/runtime.js) first on the
 * PATH of every session. `stop()` stops the server and the runtime's services, by PID.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEPLOY_USER,
  ensureDeployUser,
  makeKeyPair,
  sandboxRuntimeEnv,
  startOpenSsh,
  stopServices,
  type KeyPair,
  type OpenSsh,
} from '../../src/testing';

export type ClientKey = KeyPair;

export function makeClientKey(dir: string): ClientKey {
  mkdirSync(dir, { recursive: true });
  return makeKeyPair(join(dir, 'client_ed25519'), 'fleet-deploy-test');
}

export interface TestSshd extends Omit<OpenSsh, 'stop'> {
  name: string;
  user: string;
  stop(): Promise<void>;
}

export async function startSshd(
  name: string,
  root: string,
  key: ClientKey,
  /** Session variables over the sandbox runtime's (e.g. a PATH without it). */
  env: Record<string, string> = {},
  /** More sshd_config lines (e.g. "PermitOpen none"). */
  extraConfig: string[] = [],
): Promise<TestSshd> {
  ensureDeployUser();
  const dir = join(root, `sshd-${name}`);
  const runtime = sandboxRuntimeEnv(dir);
  const sshd = await startOpenSsh({
    dir,
    user: DEPLOY_USER,
    authorizedKey: key.publicKey,
    env: { ...runtime, ...env },
    extraConfig,
  });
  return {
    ...sshd,
    name,
    user: DEPLOY_USER,
    stop: async () => {
      sshd.stop();
      stopServices([runtime.FLEET_SANDBOX_STATE!]);
    },
  };
}

export function tempRoot(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
