/**
 * Hosts in network namespaces this test makes, for network faults: each a namespace with a veth pair
 * (10.213.N.1 on this side, 10.213.N.2 inside), a real sshd listening only on 10.213.N.2:22 and the
 * sandbox runtime for its tenant's stack, started inside the namespace. Faults: link down, nftables drop,
 * reset or random loss (a table of our own in the namespace), tbf for a slow link, SIGSTOP for a hung
 * server. `destroy()` removes every process (by PID), the namespace (with its nft table and veth end) and
 * this side's veth, whatever state a test left it in.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  descendants,
  DEPLOY_USER,
  ensureDeployUser,
  handOver,
  makeKeyPair,
  sandboxRuntimeEnv,
  sshdConfig,
  SSHD,
  stopProcesses,
  stopServices,
  writeTenantDir,
  type KeyPair,
} from '../../../src/testing';

const run = (argv: string[]) => execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
const quiet = (argv: string[]) => {
  try {
    run(argv);
  } catch {
    // already gone
  }
};

export const canNetns = (() => {
  try {
    return process.getuid?.() === 0 && existsSync(SSHD) && existsSync('/usr/sbin/nft');
  } catch {
    return false;
  }
})();

export interface NetHost {
  ns: string;
  address: string;
  /** The tenant's health port (inside the namespace). */
  port: number;
  hostKey: string;
  tenantDir: string;
  stateDir: string;
  sshdPid: number;
  /** Runs a command inside the namespace. */
  exec(argv: string[]): string;
  linkDown(): void;
  linkUp(): void;
  /** nftables on the namespace's input to port 22: drop, reset, or drop a share of packets (0–9 of 10). */
  nft(kind: 'drop' | 'reset' | { loss: number }): void;
  clearNft(): void;
  slowLink(): void;
  clearSlow(): void;
  /** SIGSTOP (or SIGCONT) to sshd and every per-connection process under it. */
  hang(): void;
  resume(): void;
  /** "200 {…}" of the tenant's health page, fetched inside the namespace. */
  health(): string;
  destroy(): void;
}

/** A host in its own namespace; `n` (1–250) picks its addresses and names, unique per test file. */
export function makeNetHost(root: string, n: number, key: KeyPair, port: number, startWith = 'v1'): NetHost {
  ensureDeployUser();
  const tag = `${process.pid % 10000}-${n}`;
  const ns = `fdchaos-${tag}`;
  const outer = `fdc${tag}`.slice(0, 15);
  const inner = 'eth0';
  const address = `10.213.${n}.2`;
  const inNs = (argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv]).toString();
  const pids: number[] = [];
  const dir = join(root, `host-${n}`);
  const stateDir = join(dir, 'sshd', 'sandbox');
  const destroy = () => {
    for (const pid of pids) quiet(['kill', '-CONT', String(pid)]);
    stopServices([stateDir], 1000);
    stopProcesses(pids, 1000);
    // per-connection sshd processes still inside: by PID, from the namespace's own list
    const inside = (() => {
      try {
        return run(['ip', 'netns', 'pids', ns]).toString().split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    })();
    stopProcesses(inside, 500);
    quiet(['ip', 'netns', 'del', ns]);
    quiet(['ip', 'link', 'del', outer]);
  };
  try {
    run(['ip', 'netns', 'add', ns]);
    run(['ip', 'link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', ns]);
    run(['ip', 'addr', 'add', `10.213.${n}.1/24`, 'dev', outer]);
    run(['ip', 'link', 'set', outer, 'up']);
    inNs(['ip', 'addr', 'add', `${address}/24`, 'dev', inner]);
    inNs(['ip', 'link', 'set', inner, 'up']);
    inNs(['ip', 'link', 'set', 'lo', 'up']);

    const sshdDir = join(dir, 'sshd');
    mkdirSync(sshdDir, { recursive: true });
    const runtime = sandboxRuntimeEnv(sshdDir);
    const hostKey = makeKeyPair(join(sshdDir, 'host_ed25519'), '').publicKey.split(' ').slice(0, 2).join(' ');
    writeFileSync(join(sshdDir, 'authorized_keys'), `${key.publicKey}\n`, { mode: 0o644 });
    const config = sshdConfig(
      { dir: sshdDir, user: DEPLOY_USER, authorizedKey: key.publicKey, env: runtime },
      22,
    ).replace('ListenAddress 127.0.0.1', `ListenAddress ${address}`);
    writeFileSync(join(sshdDir, 'sshd_config'), config);

    const tenantDir = join(dir, 'tenant');
    writeTenantDir(tenantDir, {
      title: 'chaos',
      image: `registry.test/acme/app:${startWith}`,
      port,
      env: {},
    });
    handOver(dir);
    mkdirSync('/run/sshd', { recursive: true });
    const sshd = spawn('ip', ['netns', 'exec', ns, SSHD, '-D', '-e', '-f', join(sshdDir, 'sshd_config')], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    sshd.unref();
    pids.push(sshd.pid!); // `ip netns exec` execs sshd: the same PID
    // the tenant's stack, inside the namespace (its health page is on the namespace's 127.0.0.1)
    inNs([
      'runuser',
      '-u',
      DEPLOY_USER,
      '--',
      'env',
      `FLEET_SANDBOX_STATE=${runtime.FLEET_SANDBOX_STATE}`,
      `PATH=${runtime.PATH}`,
      'sh',
      '-c',
      `cd ${tenantDir} && docker compose up -d`,
    ]);
    waitForBanner(inNs, address);
    const stopSignal = (sig: 'STOP' | 'CONT') => {
      for (const pid of [pids[0]!, ...descendants(pids[0]!)]) quiet(['kill', `-${sig}`, String(pid)]);
    };
    return {
      ns,
      address,
      port,
      hostKey,
      tenantDir,
      stateDir,
      sshdPid: pids[0]!,
      exec: inNs,
      linkDown: () => inNs(['ip', 'link', 'set', inner, 'down']),
      linkUp: () => inNs(['ip', 'link', 'set', inner, 'up']),
      nft: (kind) => {
        const verdict =
          kind === 'drop'
            ? 'drop'
            : kind === 'reset'
              ? 'reject with tcp reset'
              : `numgen random mod 10 < ${kind.loss} drop`;
        inNs([
          'nft',
          `add table inet fdchaos; add chain inet fdchaos input { type filter hook input priority 0; }; add rule inet fdchaos input tcp dport 22 ${verdict}`,
        ]);
      },
      clearNft: () => quiet(['ip', 'netns', 'exec', ns, 'nft', 'delete table inet fdchaos']),
      slowLink: () =>
        inNs([
          'tc',
          'qdisc',
          'add',
          'dev',
          inner,
          'root',
          'tbf',
          'rate',
          '64kbit',
          'burst',
          '1600',
          'latency',
          '2s',
        ]),
      clearSlow: () => quiet(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', inner, 'root']),
      hang: () => stopSignal('STOP'),
      resume: () => stopSignal('CONT'),
      health: () => {
        try {
          return inNs(['curl', '-s', '-m', '2', '-w', ' %{http_code}', `http://127.0.0.1:${port}/health`]);
        } catch {
          return 'down';
        }
      },
      destroy,
    };
  } catch (e) {
    destroy();
    throw e;
  }
}

function waitForBanner(inNs: (argv: string[]) => string, address: string): void {
  for (let i = 0; i < 50; i++) {
    try {
      if (
        inNs(['bash', '-c', `exec 3<>/dev/tcp/${address}/22 2>/dev/null && head -c 4 <&3`]).startsWith('SSH-')
      )
        return;
    } catch {
      // not yet
    }
    execFileSync('sleep', ['0.1']);
  }
  throw new Error(`sshd on ${address} did not answer`);
}
