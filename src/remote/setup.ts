/**
 * The remote verbs of `fleet-deploy setup-server`, run as a privileged user (root, or through `sudo -n`):
 * each script is a list of idempotent steps that look before they change, and print one line per step,
 * `@@step NAME unchanged|changed|failed DETAIL`. Nothing a step writes is printed: the secrets of a new
 * `.env` are made on the server (`/dev/urandom`) and written to the file, never to the output.
 *
 * Root never opens, chmods or chowns anything in a directory the deploy user can write (its home, a
 * tenant directory under it): the deploy user could have put a link there. What goes in such a place
 * (the authorized key, the tenant directory under the home, the compose file, `.env`) is written AS the
 * deploy user (`runuser`, else `su`), so a link can only lead where that user could write anyway, and
 * in a private directory (private-dir.ts) then renamed into place. Root itself only makes or chowns
 * (`chown -h`) a tenant directory whose every parent only root can change, and refuses, naming the
 * path, one that is not owned by the deploy user inside a directory someone else can write.
 */
import { createHash } from 'node:crypto';
import type { Tenant } from '../registry/model';
import { ENV_VAR } from '../registry/patterns';
import { composeArgv } from './compose';
import { inPrivateDir } from './private-dir';
import { cases, named, Script, sh } from './shell';

export type StepResult = 'unchanged' | 'changed' | 'failed';
export interface SetupStep {
  step: string;
  result: StepResult;
  detail: string;
}

/** `{{secret:NAME:LENGTH}}` in an .env template: a random value of LENGTH letters and digits, made on the server. */
export const SECRET_PLACEHOLDER = /\{\{secret:([^:}]*):([^}]*)\}\}/g;
export const SECRET_LENGTH = { min: 16, max: 4096 };

export interface Secret {
  /** The placeholder as written, e.g. "{{secret:GATEWAY_TOKEN:48}}". */
  placeholder: string;
  name: string;
  length: number;
}

/** The distinct placeholders of a template, or the first one that is not well formed (as a message). */
export function secretsOf(template: string): Secret[] | string {
  const out: Secret[] = [];
  for (const m of template.matchAll(SECRET_PLACEHOLDER)) {
    const [placeholder, name = '', len = ''] = m;
    const length = Number(len);
    if (!ENV_VAR.re.test(name)) return `${placeholder}: ${JSON.stringify(name)} is not a variable name`;
    if (!/^\d+$/.test(len) || length < SECRET_LENGTH.min || length > SECRET_LENGTH.max)
      return `${placeholder}: the length must be a whole number from ${SECRET_LENGTH.min} to ${SECRET_LENGTH.max}`;
    if (!out.some((s) => s.placeholder === placeholder)) out.push({ placeholder, name, length });
  }
  return out;
}

/**
 * The shell functions every setup script uses: `step` reports, `as_user SCRIPT` runs SCRIPT as $user
 * (runuser where util-linux has it, else su; neither asks a password of root).
 */
const STEP_FN = new Script(
  [
    `step() { printf '@@step %s %s %s\\n' "$1" "$2" "$3"; }`,
    `as_user() { if command -v runuser >/dev/null 2>&1; then runuser -u "$user" -- sh -c "$1"; else su -s /bin/sh -c "$1" "$user"; fi; }`,
  ].join('\n'),
);

/** Exit code of a script run as the user when there was nothing to do (0: changed; anything else: failed). */
const UNCHANGED = 3;

/** Runs the script as root: directly for root, else through `sudo -n` (no password prompt). */
export function asRoot(adminUser: string, script: Script): Script {
  if (adminUser === 'root') return script;
  return named(script.verb ?? 'setup', sh`sudo -n sh -c ${script.text}`);
}

export interface ServerSetup {
  /** The deploy user (the registry's `user`). */
  user: string;
  /** The group that gives access to the container engine (docker). */
  group: string;
  /** The deploy user's public key line. */
  publicKey: string;
}

/**
 * Run as the deploy user: its authorized key, appended when missing (~/.ssh made 0700 when missing). As
 * that user, a link in its home leads nowhere it could not write itself.
 */
function authorizeKey(publicKey: string): string {
  const there = sh`[ -f "$f" ] && grep -qxF -- "$key" "$f"`;
  const append = sh`mkdir -p -- "$HOME/.ssh" && printf '%s\n' "$key" >> "$f" && chmod 600 -- "$f"`;
  return sh`umask 077; key=${publicKey}; f="$HOME/.ssh/authorized_keys"; if ${there}; then exit ${UNCHANGED}; fi; ${append}`
    .text;
}

/** The deploy user's home and group (`$home`, `$ug`); `$ug` fails when there is no such user. */
const HOME_AND_GROUP = sh`home=$(getent passwd "$user" | cut -d: -f6); ug=$(id -g "$user" 2>/dev/null)`;

/** The deploy user: there, or made with a home and bash. */
const USER_STEP = cases(
  [
    [sh`id -u "$user" >/dev/null 2>&1`, sh`step user unchanged "$user exists"`],
    [sh`useradd -m -s /bin/bash "$user"`, sh`step user changed "created $user"`],
  ],
  sh`step user failed "useradd $user failed"`,
);

/** No password (`usermod -p '*'`), so only keys log the deploy user in. */
const PASSWORD_STEP = sh`pw=$(getent shadow "$user" | cut -d: -f2); ${cases(
  [
    [sh`[ "$pw" = '*' ]`, sh`step password unchanged 'no password (key login only)'`],
    [sh`usermod -p '*' "$user"`, sh`step password changed 'set to none (key login only)'`],
  ],
  sh`step password failed 'usermod -p failed'`,
)}`;

/** The deploy user in the engine's group (which must exist: the engine is installed first). */
const GROUP_STEP = cases(
  [
    [
      sh`! getent group "$group" >/dev/null`,
      sh`step group failed "no group $group on this server: install the container engine first, or pass --group"`,
    ],
    [
      sh`id -nG "$user" 2>/dev/null | tr ' ' '\n' | grep -qxF -- "$group"`,
      sh`step group unchanged "$user is in $group"`,
    ],
    [sh`usermod -aG "$group" "$user"`, sh`step group changed "added $user to $group"`],
  ],
  sh`step group failed "usermod -aG $group failed"`,
);

/** The deploy user's authorized key, written as that user (authorizeKey). */
const keyStep = (publicKey: string) =>
  cases(
    [[sh`[ -z "$home" ]`, sh`step key failed 'no home directory'`]],
    userStep(
      'key',
      authorizeKey(publicKey),
      sh`"added to $home/.ssh/authorized_keys"`,
      sh`'authorized'`,
      sh`"could not write $home/.ssh/authorized_keys as $user"`,
    ),
  );

/**
 * The server's steps: the deploy user (made with a home and bash; no password: `usermod -p '*'`, so only
 * keys log it in), its membership of the engine's group, and its authorized key.
 */
export function setupServer(o: ServerSetup): Script {
  const lines: Script[] = [
    STEP_FN,
    sh`user=${o.user}; group=${o.group}; key=${o.publicKey}`,
    USER_STEP,
    PASSWORD_STEP,
    GROUP_STEP,
    HOME_AND_GROUP,
    keyStep(o.publicKey),
  ];
  return named('setupServer', new Script(lines.map(String).join('\n')));
}

export interface TenantSetup {
  user: string;
  tenant: Tenant;
  /** The compose file's text, copied to the tenant's first compose file. */
  compose?: string;
  /** The .env template with {{secret:…}} placeholders ({tenant}/{server} already filled in). */
  envTemplate?: string;
  /** Where to write the systemd unit (e.g. /etc/systemd/system), when one is wanted. */
  systemdDir?: string;
}

/**
 * Replaces each placeholder ($FLEET_PH, one a line) by the value in $FLEET_S_<i>, literally (index(), not
 * a regular expression). Values come through the environment, never awk -v, which reads backslashes.
 */
const FILL_PROGRAM = [
  'BEGIN { n = split(ENVIRON["FLEET_PH"], ph, "\\n") }',
  '{ line = $0; for (i = 1; i <= n; i++) { v = ENVIRON["FLEET_S_" i]; out = ""; ' +
    'while ((p = index(line, ph[i])) > 0) { out = out substr(line, 1, p - 1) v; line = substr(line, p + length(ph[i])) } ' +
    'line = out line } print line }',
].join('\n');

/**
 * Run as the deploy user in the tenant directory: a new .env when there is none. The secrets are made
 * here, the template filled in a private directory (private-dir.ts) and the file linked into place
 * (`ln`: it fails, rather than replace, when a .env appeared meanwhile; it never follows a link there).
 */
function writeEnv(template: string, secrets: readonly Secret[]): string {
  const make = secrets.map((s, i) => {
    const v = new Script(`FLEET_S_${i + 1}`); // a constant name: the value is only ever in this variable
    const random = sh`$(head -c ${s.length * 2 + 64} /dev/urandom | base64 | tr -dc A-Za-z0-9 | head -c ${s.length})`;
    return sh`${v}=${random}; [ ${new Script(`\${#${v.text}}`)} -eq ${s.length} ] || ok=; export ${v}`;
  });
  const placeholders = secrets.map((s) => s.placeholder).join('\n');
  const filled = sh`printf '%s' ${template} | FLEET_PH=${placeholders} awk ${FILL_PROGRAM} > new`;
  const secretsMade = new Script(make.map(String).join('; ') || ':');
  const fill = sh`umask 077; ok=1; ${secretsMade}; [ -n "$ok" ] && ${filled} && chmod 600 new && ln -T -- new ../.env`;
  const kept = sh`if [ -e .env ] || [ -L .env ]; then exit ${UNCHANGED}; fi`;
  return sh`cd -- "$dir" || exit 1; ${kept}; ${inPrivateDir('.', fill)}`.text;
}

/**
 * Run as the deploy user in the tenant directory: FILE (relative) given `text` when it differs (compared
 * by sha256, so the text travels once), written in a private directory beside it and renamed over it.
 */
function putFile(file: string, text: string, mode: string): string {
  const slash = file.lastIndexOf('/');
  const dir = slash < 0 ? '.' : file.slice(0, slash);
  const sum = createHash('sha256').update(text).digest('hex');
  const write = sh`printf '%s' ${text} > new && chmod ${mode} new && mv -fT -- new ${`../${file.slice(slash + 1)}`}`;
  const same = sh`[ -f ${file} ] && [ "$(sha256sum < ${file} | cut -c 1-64)" = ${sum} ]`;
  return sh`cd -- "$dir" || exit 1; if ${same}; then exit ${UNCHANGED}; fi; mkdir -p -- ${dir} && ${inPrivateDir(dir, write)}`
    .text;
}

/**
 * Run as the deploy user: the tenant directory when it is the user's own already (unchanged), or made
 * by the user (so a link on the way, e.g. in its home, leads only where it could write anyway).
 */
const OWN_DIR = '[ -d "$dir" ] && [ ! -L "$dir" ] && [ "$(stat -c %u -- "$dir")" = "$(id -u)" ]';
const MAKE_DIR = '[ ! -e "$dir" ] && [ ! -L "$dir" ] && mkdir -p -- "$dir" && chmod 750 -- "$dir"';
const USER_DIR = `if ${OWN_DIR}; then exit ${UNCHANGED}; fi; ${MAKE_DIR}`;

/**
 * `root_only PATH` succeeds when PATH and every directory above it that exists resolve to directories
 * root alone can change (owned by root, not writable by group or others unless sticky). Then any link on
 * the way sits in such a directory: root put it there, nobody else can have.
 */
export const ROOT_ONLY = new Script(
  `root_only() { p=$1; while :; do ${rootOnlyOne()}; [ "$p" = / ] && return 0; p=$(dirname -- "$p"); done; }`,
);

/** The one path `$p`, when it exists: owned by root, and not writable by group or others (022) unless sticky (01000). */
function rootOnlyOne(): string {
  const rootsAlone = '[ "$1" = 0 ] && { [ $((m & 18)) -eq 0 ] || [ $((m & 512)) -ne 0 ]; }';
  return `if [ -e "$p" ]; then set -- $(stat -L -c '%u %a' -- "$p"); m=$((0$2)); ${rootsAlone} || return 1; fi`;
}

/**
 * The tenant directory's step. The deploy user makes it, or finds it its own, when it can. Otherwise root
 * makes it or gives it to the user (`chown -h`), but only when every directory above it only root can
 * change (root_only: so nobody else can have put a link on the way), and never when it is a link.
 */
function directoryStep(): Script {
  const asUser = cases(
    [
      [sh`[ $rc -eq ${UNCHANGED} ]`, sh`step directory unchanged "$dir"`],
      [sh`[ $rc -eq 0 ]`, sh`step directory changed "created $dir"`],
    ],
    sh`canon=$dir; ${AS_ROOT_DIR}`,
  );
  return sh`as_user ${USER_DIR}; rc=$?; ${asUser}`;
}

const SHARED =
  'is not owned by $user, and a directory above it can be changed by another user than root: ' +
  'fleet-deploy does not create or chown it as root; ' +
  'check it and chown it by hand, or put the tenant under a root-owned directory';
const NOT_A_DIRECTORY = 'is not a directory (a link or a file): fleet-deploy does not follow or chown it';

/** Root's part of the directory step: refused above a directory others can change, or on a link; else chown or mkdir. */
const AS_ROOT_DIR = cases(
  [
    [
      sh`! root_only "$(dirname -- "$canon")"`,
      sh`step directory failed "$dir ${new Script(SHARED)}"; exit 0`,
    ],
    [
      sh`[ -L "$canon" ] || { [ -e "$canon" ] && [ ! -d "$canon" ]; }`,
      sh`step directory failed "$canon ${new Script(NOT_A_DIRECTORY)}"; exit 0`,
    ],
    [
      sh`[ -d "$canon" ] && chown -h "$user:$ug" "$canon"`,
      sh`step directory changed "$dir now owned by $user"`,
    ],
    [
      sh`mkdir -p -- "$canon" && chown -h "$user:$ug" "$canon" && chmod 750 "$canon"`,
      sh`step directory changed "created $dir"`,
    ],
  ],
  sh`step directory failed "could not make $dir"; exit 0`,
);

/** A step run as the deploy user: its script's exit code says changed (0), unchanged or failed. */
function userStep(
  name: string,
  script: string,
  changed: string | Script,
  unchanged: string | Script,
  failed: string | Script,
): Script {
  const ok = sh`0) step ${name} changed ${changed} ;; ${UNCHANGED}) step ${name} unchanged ${unchanged} ;;`;
  return sh`as_user ${script}; case $? in ${ok} *) step ${name} failed ${failed} ;; esac`;
}

/** The systemd unit that brings the tenant's stack up at boot (as the deploy user, in its directory). */
export function systemdUnit(t: Tenant, user: string, dir: string): string {
  const compose = ['/usr/bin/env', ...composeArgv(t)].join(' ');
  return [
    '[Unit]',
    `Description=fleet-deploy stack ${t.id} (${dir})`,
    'Wants=network-online.target',
    'After=network-online.target docker.service podman.socket',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `User=${user}`,
    `WorkingDirectory=${dir}`,
    `ExecStart=${compose} up -d`,
    `ExecStop=${compose} stop`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

export const unitName = (t: Tenant) => `fleet-${t.id}.service`;

/**
 * A tenant's steps: its directory (owned by the deploy user; a relative path is under the user's home),
 * the compose file (replaced when it differs), a `.env` from the template when there is none (an existing
 * one is never touched), and the systemd unit (enabled only where systemd runs).
 */
export function setupTenant(o: TenantSetup): Script {
  const t = o.tenant;
  const file = t.compose.files[0]!;
  const lines: Script[] = [
    STEP_FN,
    ROOT_ONLY,
    sh`user=${o.user}; path=${t.path}; ${HOME_AND_GROUP} || { step directory failed "no user $user"; exit 0; }`,
    new Script('case $path in /*) dir=$path ;; *) dir="$home/$path" ;; esac; dir=${dir%/}; export dir'),
    directoryStep(),
  ];
  if (o.compose !== undefined)
    lines.push(
      userStep(
        'compose',
        putFile(file, o.compose, '644'),
        `wrote ${file}`,
        file,
        `could not write ${file} (as the deploy user)`,
      ),
    );
  const secrets = o.envTemplate === undefined ? [] : secretsOf(o.envTemplate);
  if (typeof secrets === 'string') throw new Error(secrets); // checked by the caller first
  const template =
    o.envTemplate ?? '# made by fleet-deploy setup-server: the image variables are set by the first deploy';
  const made = secrets.length
    ? `made with ${secrets.length} secret(s) generated on the server, mode 0600`
    : 'made, mode 0600';
  lines.push(
    userStep(
      'env',
      writeEnv(template, secrets),
      made,
      'kept: an existing .env is never overwritten',
      'could not write .env (as the deploy user)',
    ),
  );
  if (o.systemdDir !== undefined) lines.push(...systemdSteps(t, o.user, o.systemdDir));
  return named('setupTenant', new Script(lines.map(String).join('\n')));
}

/** The systemd unit written when it differs, then enabled where systemd runs. */
function systemdSteps(t: Tenant, user: string, systemdDir: string): Script[] {
  const name = unitName(t);
  const unit = sh`${systemdDir}/${name}`;
  const same = sh`[ -f ${unit} ] && [ "$(cat ${unit}; echo x)" = "$unit"x ]`;
  const written = sh`mkdir -p ${systemdDir} && printf '%s' "$unit" > ${unit}.tmp && mv -f ${unit}.tmp ${unit}`;
  const write = cases(
    [
      [same, sh`what=unchanged`],
      [written, sh`what=changed`],
    ],
    sh`step systemd failed 'could not write the unit'; what=`,
  );
  const noSystemd = sh`! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]`;
  const enable = cases(
    [
      [sh`[ -z "$what" ]`, sh`:`],
      [noSystemd, sh`step systemd "$what" ${`${name} written; not enabled: systemd does not run here`}`],
      [
        sh`systemctl is-enabled --quiet ${name} 2>/dev/null && [ "$what" = unchanged ]`,
        sh`step systemd unchanged ${`${name} enabled`}`,
      ],
      [
        sh`systemctl daemon-reload && systemctl enable --quiet ${name}`,
        sh`step systemd changed ${`${name} written and enabled`}`,
      ],
    ],
    sh`step systemd failed 'systemctl enable failed'`,
  );
  const text = systemdUnit(t, user, '@DIR@');
  return [sh`unit=$(printf '%s' ${text} | sed "s|@DIR@|$dir|g"); ${write}`, enable];
}

/** The step lines of a setup script's output (server text: names and results checked, details bounded). */
export function parseSteps(stdout: string): SetupStep[] {
  const out: SetupStep[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^@@step ([a-z]{1,20}) (unchanged|changed|failed) ?(.*)$/.exec(line.trimEnd());
    if (m) out.push({ step: m[1]!, result: m[2] as StepResult, detail: m[3]!.slice(0, 300) });
  }
  return out;
}
