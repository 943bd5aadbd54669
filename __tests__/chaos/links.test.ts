/**
 * Planted links, over real sshd: the tenant directory (and its .fleet) is writable by another user
 * (`nobody` here, the attacker), who runs a real inotify watcher (inotifywait from inotify-tools) that
 * races the tool: every name the tool's scripts create there — a temporary file, a private directory —
 * is replaced within milliseconds by a link to the attacker's own directory, and the fixed names older
 * versions wrote through (`.fleet/slots/active.tmp`, `.fleet/backups/ID.tar.gz.part`) are planted as links
 * before every run. The deploy user then runs the scripts that write files (the .env switch of a deploy,
 * the blue-green slot file, live marker and .env, a backup), 50 times each. A leak is any byte of a
 * tool-written file — the .env's secret, an archive, a slot name — reaching the attacker's directory, or a
 * planted link's target changed. 0 leaks of 200 runs; a run the tool refuses (the private directory it
 * made was swapped) counts as safe: nothing was written.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseRegistry, targetsOf, type Tenant } from '../../src/registry';
import * as B from '../../src/remote/blue-green';
import { backup, backupId } from '../../src/remote/backup';
import * as R from '../../src/remote/commands';
import type { Script } from '../../src/remote/shell';
import { SshConnector } from '../../src/ssh/transport';
import { haveSshd, handOver } from '../../src/testing';
import type { Transport } from '../../src/deploy/ports';
import { makeClientKey, startSshd, tempRoot, type ClientKey, type TestSshd } from '../helpers/sshd';
import { scenario } from './lib/record';

const RUNS = 50;
const SECRET = 'TOKEN=planted-link-secret-4f1c9a';
const haveInotify = spawnSync('sh', ['-c', 'command -v inotifywait']).status === 0;
const asRoot = process.getuid?.() === 0;
const describeLinks = haveSshd && haveInotify && asRoot ? describe : describe.skip;

/**
 * The attacker's watcher, run as `nobody`: each new name in the watched directories that the tool
 * could write through is moved away and replaced by a link into $LOOT (a mktemp'd file: removed and
 * linked; a private directory: renamed and linked).
 */
const WATCHER = `inotifywait -m -e create,moved_to --format '%w%f' "$T" "$T/.fleet" "$T/.fleet/slots" "$T/.fleet/backups" |
while IFS= read -r p; do
  n=\${p##*/}
  case $n in
    *.gone|*.old) ;;
    .env.fleet-*|*.fleet-XXXXXX|*.fleet-??????) rm -f "$p" 2>/dev/null && ln -s "$LOOT/$n" "$p" ;;
    .fleet-tmp.*) mv "$p" "$p.gone" 2>/dev/null && ln -s "$LOOT" "$p" ;;
  esac
done`;

describeLinks('planted links, raced by a real inotify watcher', () => {
  let root: string;
  let key: ClientKey;
  let sshd: TestSshd;
  let transport: Transport;
  let watcher: ChildProcess;
  let dir: string;
  let loot: string;
  let t: Tenant;

  beforeAll(async () => {
    root = tempRoot('fd-chaos-links-');
    key = makeClientKey(root);
    const bin = join(root, 'bin');
    mkdirSync(bin);
    // a compose double: the scripts' compose calls do nothing (the files they write are the subject)
    writeFileSync(join(bin, 'docker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    sshd = await startSshd('links', root, key, { PATH: `${bin}:/usr/bin:/bin` });
    dir = join(root, 'tenant');
    loot = join(root, 'loot');
    mkdirSync(join(dir, '.fleet', 'slots'), { recursive: true });
    mkdirSync(join(dir, '.fleet', 'backups'), { recursive: true });
    mkdirSync(loot);
    writeFileSync(join(dir, '.env'), `APP_IMAGE=registry.test/acme/app:v1\n${SECRET}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'docker-compose.yml'), 'services: {}\n');
    handOver(dir);
    // the tenant directory and .fleet are writable by others: the attacker is one of them
    for (const d of [dir, join(dir, '.fleet'), join(dir, '.fleet', 'slots'), join(dir, '.fleet', 'backups')])
      chmodSync(d, 0o777);
    spawnSync('chown', ['nobody', loot]);
    chmodSync(loot, 0o777);
    chmodSync(root, 0o755);
    const registry = {
      servers: [
        {
          name: 'links',
          host: '127.0.0.1',
          port: sshd.port,
          user: sshd.user,
          hostKey: sshd.hostKey,
          region: 'local',
          tenants: [
            {
              id: 'acme',
              path: dir,
              health: { port: 18999 },
              images: [{ variable: 'APP_IMAGE', repository: 'registry.test/acme/app' }],
            },
          ],
        },
      ],
    };
    const target = targetsOf(parseRegistry(JSON.stringify(registry), 'links.json'))[0]!;
    t = target.tenant;
    transport = await new SshConnector({ privateKey: key.privateKey }).connect(target.server);
    watcher = spawn('runuser', ['-u', 'nobody', '--', 'sh', '-c', WATCHER], {
      env: { ...process.env, T: dir, LOOT: loot },
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      watcher.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('Watches established')) resolve();
      });
      watcher.on('exit', () => reject(new Error(`the watcher stopped: ${err}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (watcher?.pid) process.kill(-watcher.pid, 'SIGTERM');
    await transport?.close();
    await sshd?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** Plants the fixed names older versions wrote through, each a link to a file of the attacker's. */
  function plantFixed(id: string): void {
    for (const name of ['.fleet/slots/active.tmp', `.fleet/backups/${id}.tar.gz.part`]) {
      rmSync(join(dir, name), { force: true });
      symlinkSync(join(loot, name.replaceAll('/', '_')), join(dir, name));
    }
  }

  /** What reached the attacker: any file in the loot directory with content. */
  function leaked(): string[] {
    return readdirSync(loot).filter((f) => statSync(join(loot, f)).size > 0);
  }

  /** The tenant's .env: still its own regular file with its secret (else put back, and counted). */
  function envIntact(): boolean {
    const file = join(dir, '.env');
    const ok = existsSync(file) && lstatSync(file).isFile() && readFileSync(file, 'utf8').includes(SECRET);
    if (!ok) {
      rmSync(file, { force: true });
      writeFileSync(file, `APP_IMAGE=registry.test/acme/app:v1\n${SECRET}\n`, { mode: 0o600 });
      handOver(file);
    }
    return ok;
  }

  async function race(script: (i: number) => Script) {
    let leaks = 0;
    let refused = 0;
    let failed = 0;
    for (let i = 0; i < RUNS; i++) {
      plantFixed(backupId(new Date(Date.UTC(2030, 0, 1, 0, 0, i))));
      const r = await transport.exec(script(i), { timeoutMs: 30_000 });
      const found = leaked();
      for (const f of found) rmSync(join(loot, f), { force: true });
      const intact = envIntact();
      if (found.length || !intact) leaks++;
      else if (r.code !== 0 && /refusing to write|was replaced by a link/.test(r.stderr)) refused++;
      else if (r.code !== 0) failed++;
    }
    return { leaks, refused, failed };
  }

  const ref = (i: number) => `registry.test/acme/app:v${i + 2}`;
  const cases: Array<[string, (i: number) => Script]> = [
    ['the .env switch of a deploy', (i) => R.update(t, { APP_IMAGE: ref(i) })],
    [
      'a blue-green slot file',
      (i) =>
        B.startSlot(t, 'green', 'acme-green', { APP_IMAGE: ref(i) }, { variable: 'APP_PORT', value: 18100 }),
    ],
    [
      'the blue-green live marker and .env',
      (i) => B.recordLive(t, i % 2 ? 'blue' : 'green', { APP_IMAGE: ref(i) }),
    ],
    ['a backup archive', (i) => backup(t, backupId(new Date(Date.UTC(2030, 0, 1, 0, 0, i))))],
  ];

  for (const [name, script] of cases)
    scenario(
      'planted links',
      `${name}: a writer of the tenant directory races it with links (inotify), ${RUNS} runs`,
      'nothing the tool writes reaches a link planted by another user: 0 leaks',
      async () => {
        const { leaks, refused, failed } = await race(script);
        expect({ leaks, failed }).toEqual({ leaks: 0, failed: 0 });
        return {
          measured: `0 of ${RUNS} runs leaked`,
          cases: RUNS,
          detail: `${refused} refused (the private directory was swapped), ${RUNS - refused} wrote safely`,
        };
      },
      180_000,
    );
});
