/**
 * Ansible: an inventory of the servers (tenants as host variables) and a playbook with the same steps as
 * shell tasks looped over the host's tenants, forks = C. Tuned the way its docs recommend for speed:
 * pipelining on, SSH ControlPersist (its default), no fact gathering, a fixed Python interpreter. The
 * playbook is written as an Ansible user would write it, by hand; its health poll is the floor's.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEPLOY_USER } from '../../src/testing';
import { tryRun } from '../lib/session';
import type { Engine } from './engine';
import { healthPoll } from './floor';
import type { Fleet } from './servers';

export interface Ansible {
  argv: string[];
  env: NodeJS.ProcessEnv;
  version: string;
  /** Ends the SSH control masters (they would count as open connections and hold sshd processes). */
  closeControlMasters(): void;
}

const indent = (text: string, n: number) =>
  text
    .split('\n')
    .map((l) => (l ? ' '.repeat(n) + l : l))
    .join('\n');

const task = (name: string, body: string, extra = '') => `    - name: ${name}
      shell: |
${indent(body, 8)}
      args: { chdir: "{{ t.dir }}" }
      loop: "{{ tenants }}"
      loop_control: { loop_var: t, index_var: i, label: "{{ t.id }}" }
${extra ? indent(extra, 6) + '\n' : ''}`;

/** Switches APP_IMAGE in .env atomically (cp -p keeps owner and mode, mv renames over). */
const switchEnv = (refExpr: string) =>
  `cp -p .env .env.fleet-new && awk -v ref="${refExpr}" '/^(export[ \\t]+)?APP_IMAGE=/ { print "APP_IMAGE=" ref; seen = 1; next } { print } END { if (!seen) print "APP_IMAGE=" ref }' .env > .env.fleet-new && mv -f .env.fleet-new .env`;

const FAILED = '(up.results[i] is failed) or (health.results[i] is failed)';

function playbook(engine: Engine): string {
  return `# The same remote steps as the floor (and fleet-deploy), one task per step, looped over tenants.
- name: deploy {{ version }}
  hosts: fleet
  gather_facts: false
  vars:
    repo: ${engine.repo}
    compose: ${engine.compose}
  tasks:
${task('preflight', 'test -f docker-compose.yml && test -f .env && df -Pk . | awk \'NR==2 {print "free_kb=" $4}\'', 'changed_when: false')}
${task('lock', `mkdir -p .fleet && mkdir .fleet/lock && printf '%s\\n' '{"actor":"ansible","version":"{{ version }}"}' > .fleet/lock/owner`)}
${task('read current', "grep -E '^(export[[:space:]]+)?APP_IMAGE=' .env | head -n 1 | sed 's/^[^=]*=//'", 'register: current\nchanged_when: false')}
${task('pull', 'docker pull -q {{ repo }}:{{ version }} >/dev/null')}
${task('switch .env', switchEnv('{{ repo }}:{{ version }}'))}
${task('compose up', '{{ compose }} -p {{ t.project }} up -d', 'register: up\nignore_errors: true')}
${task('health', `port={{ t.port }} want={{ version }}\n${healthPoll('$port', '$want')}`, 'register: health\nwhen: up.results[i] is succeeded\nignore_errors: true')}
${task(
  'roll back',
  `prev={{ current.results[i].stdout | quote }}\n${switchEnv('$prev')}\n{{ compose }} -p {{ t.project }} up -d\nport={{ t.port }} want=\${prev##*:}\n${healthPoll('$port', '$want')}`,
  `register: rollback\nwhen: ${FAILED}\nignore_errors: true`,
)}
${task(
  'history',
  `printf '{"time":"%s","actor":"ansible","target":"%s","outcome":"%s","from":"%s","to":"%s"}\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" {{ t.project }} {{ ('failed' if (rollback.results[i] is failed) else 'rolled-back') if (${FAILED}) else 'deployed' }} {{ current.results[i].stdout | quote }} {{ repo }}:{{ version }} >> .fleet/history.jsonl`,
)}
${task('unlock', 'rm -rf .fleet/lock')}
    - name: outcome
      fail: { msg: "{{ t.id }} was not deployed" }
      loop: "{{ tenants }}"
      loop_control: { loop_var: t, index_var: i, label: "{{ t.id }}" }
      when: ${FAILED}
`;
}

function inventory(fleet: Fleet) {
  const hosts = fleet.servers.map((s) => [
    s.name,
    {
      ansible_host: '127.0.0.1',
      ansible_port: s.port,
      ansible_user: DEPLOY_USER,
      ansible_ssh_private_key_file: fleet.key,
      ansible_python_interpreter: '/usr/bin/python3',
      tenants: fleet.targets
        .filter((t) => t.server === s)
        .map((t) => ({ id: t.id, dir: t.dir, project: t.project, port: t.appPort })),
    },
  ]);
  return { all: { children: { fleet: { hosts: Object.fromEntries(hosts) } } } };
}

function config(dir: string, forks: number, knownHosts: string): string {
  return `[defaults]
inventory = ${join(dir, 'inventory.yml')}
forks = ${forks}
host_key_checking = True
gathering = explicit
retry_files_enabled = False
local_tmp = ${join(dir, 'tmp')}
interpreter_python = /usr/bin/python3
nocolor = True
deprecation_warnings = False

[ssh_connection]
pipelining = True
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
control_path_dir = ${join(dir, 'cp')}
`;
}

/** Writes the inventory, ansible.cfg and the playbook under `dir`. */
export function setUpAnsible(dir: string, fleet: Fleet, engine: Engine, forks: number): Ansible {
  mkdirSync(join(dir, 'cp'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  writeFileSync(join(dir, 'inventory.yml'), JSON.stringify(inventory(fleet), null, 1)); // JSON is YAML
  writeFileSync(join(dir, 'ansible.cfg'), config(dir, forks, fleet.knownHosts));
  writeFileSync(join(dir, 'deploy.yml'), playbook(engine));
  const env = {
    ...process.env,
    ANSIBLE_CONFIG: join(dir, 'ansible.cfg'),
    ANSIBLE_HOME: dir,
    ANSIBLE_NOCOLOR: '1',
  };
  const versionText = tryRun('ansible-playbook', ['--version'], { env, timeoutMs: 30_000 }).stdout ?? '';
  return {
    argv: ['ansible-playbook', join(dir, 'deploy.yml'), '-e', 'version=v2'],
    env,
    version: /core ([\d.]+)/.exec(versionText)?.[1] ?? '?',
    closeControlMasters: () => {
      const cp = join(dir, 'cp');
      if (!existsSync(cp)) return;
      for (const f of readdirSync(cp))
        tryRun('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(cp, f)}`, '-O', 'exit', 'x'], {
          timeoutMs: 5000,
        });
    },
  };
}
