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
import { named, Script, sh } from './shell';

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
  return sh`umask 077; key=${publicKey}; f="$HOME/.ssh/authorized_keys"; if [ -f "$f" ] && grep -qxF -- "$key" "$f"; then exit ${UNCHANGED}; fi; mkdir -p -- "$HOME/.ssh" && printf '%s\n' "$key" >> "$f" && chmod 600 -- "$f"`
    .text;
}

/**
 * The server's steps: the deploy user (made with a home and bash; no password: `usermod -p '*'`, so only
 * keys log it in), its membership of the engine's group, and its authorized key.
 */
export function setupServer(o: ServerSetup): Script {
  const lines: Script[] = [
    STEP_FN,
    sh`user=${o.user}; group=${o.group}; key=${o.publicKey}`,
    sh`if id -u "$user" >/dev/null 2>&1; then step user unchanged "$user exists"; elif useradd -m -s /bin/bash "$user"; then step user changed "created $user"; else step user failed "useradd $user failed"; fi`,
    sh`pw=$(getent shadow "$user" | cut -d: -f2); if [ "$pw" = '*' ]; then step password unchanged 'no password (key login only)'; elif usermod -p '*' "$user"; then step password changed 'set to none (key login only)'; else step password failed 'usermod -p failed'; fi`,
    sh`if ! getent group "$group" >/dev/null; then step group failed "no group $group on this server: install the container engine first, or pass --group"; elif id -nG "$user" 2>/dev/null | tr ' ' '\n' | grep -qxF -- "$group"; then step group unchanged "$user is in $group"; elif usermod -aG "$group" "$user"; then step group changed "added $user to $group"; else step group failed "usermod -aG $group failed"; fi`,
    sh`home=$(getent passwd "$user" | cut -d: -f6); ug=$(id -g "$user" 2>/dev/null)`,
    sh`if [ -z "$home" ]; then step key failed 'no home directory'; else as_user ${authorizeKey(o.publicKey)}; case $? in 0) step key changed "added to $home/.ssh/authorized_keys" ;; ${UNCHANGED}) step key unchanged 'authorized' ;; *) step key failed "could not write $home/.ssh/authorized_keys as $user" ;; esac; fi`,
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
const FILL_PROGRAM = `BEGIN { n = split(ENVIRON["FLEET_PH"], ph, "\\n") }
{ line = $0; for (i = 1; i <= n; i++) { v = ENVIRON["FLEET_S_" i]; out = ""; while ((p = index(line, ph[i])) > 0) { out = out substr(line, 1, p - 1) v; line = substr(line, p + length(ph[i])) } line = out line } print line }`;

/**
 * Run as the deploy user in the tenant directory: a new .env when there is none. The secrets are made
 * here, the template filled in a private directory (private-dir.ts) and the file linked into place
 * (`ln`: it fails, rather than replace, when a .env appeared meanwhile; it never follows a link there).
 */
function writeEnv(template: string, secrets: readonly Secret[]): string {
  const make = secrets.map((s, i) => {
    const v = `FLEET_S_${i + 1}`; // a constant name: the value is only ever in this variable
    return sh`${new Script(v)}=$(head -c ${s.length * 2 + 64} /dev/urandom | base64 | tr -dc A-Za-z0-9 | head -c ${s.length}); [ ${new Script(`\${#${v}}`)} -eq ${s.length} ] || ok=; export ${new Script(v)}`;
  });
  const placeholders = secrets.map((s) => s.placeholder).join('\n');
  const fill = sh`umask 077; ok=1; ${new Script(make.map(String).join('; ') || ':')}; [ -n "$ok" ] && printf '%s' ${template} | FLEET_PH=${placeholders} awk ${FILL_PROGRAM} > new && chmod 600 new && ln -T -- new ../.env`;
  return sh`cd -- "$dir" || exit 1; if [ -e .env ] || [ -L .env ]; then exit ${UNCHANGED}; fi; ${inPrivateDir('.', fill)}`
    .text;
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
  return sh`cd -- "$dir" || exit 1; if [ -f ${file} ] && [ "$(sha256sum < ${file} | cut -c 1-64)" = ${sum} ]; then exit ${UNCHANGED}; fi; mkdir -p -- ${dir} && ${inPrivateDir(dir, write)}`
    .text;
}

/**
 * Run as the deploy user: the tenant directory when it is the user's own already (unchanged), or made
 * by the user (so a link on the way, e.g. in its home, leads only where it could write anyway).
 */
const USER_DIR = `if [ -d "$dir" ] && [ ! -L "$dir" ] && [ "$(stat -c %u -- "$dir")" = "$(id -u)" ]; then exit ${UNCHANGED}; fi; [ ! -e "$dir" ] && [ ! -L "$dir" ] && mkdir -p -- "$dir" && chmod 750 -- "$dir"`;

/**
 * `root_only PATH` succeeds when PATH and every directory above it that exists resolve to directories
 * root alone can change (owned by root, not writable by group or others unless sticky). Then any link on
 * the way sits in such a directory: root put it there, nobody else can have.
 */
export const ROOT_ONLY = new Script(
  `root_only() { p=$1; while :; do if [ -e "$p" ]; then set -- $(stat -L -c '%u %a' -- "$p"); m=$((0$2)); [ "$1" = 0 ] && { [ $((m & 18)) -eq 0 ] || [ $((m & 512)) -ne 0 ]; } || return 1; fi; [ "$p" = / ] && return 0; p=$(dirname -- "$p"); done; }`,
);

/**
 * The tenant directory's step. The deploy user makes it, or finds it its own, when it can. Otherwise root
 * makes it or gives it to the user (`chown -h`), but only when every directory above it only root can
 * change (root_only: so nobody else can have put a link on the way), and never when it is a link.
 */
function directoryStep(): Script {
  const shared =
    'is not owned by $user, and a directory above it can be changed by another user than root: fleet-deploy does not create or chown it as root; check it and chown it by hand, or put the tenant under a root-owned directory';
  return sh`as_user ${USER_DIR}; rc=$?; if [ $rc -eq ${UNCHANGED} ]; then step directory unchanged "$dir"; elif [ $rc -eq 0 ]; then step directory changed "created $dir"; else canon=$dir; if ! root_only "$(dirname -- "$canon")"; then step directory failed "$dir ${new Script(shared)}"; exit 0; elif [ -L "$canon" ] || { [ -e "$canon" ] && [ ! -d "$canon" ]; }; then step directory failed "$canon is not a directory (a link or a file): fleet-deploy does not follow or chown it"; exit 0; elif [ -d "$canon" ] && chown -h "$user:$ug" "$canon"; then step directory changed "$dir now owned by $user"; elif mkdir -p -- "$canon" && chown -h "$user:$ug" "$canon" && chmod 750 "$canon"; then step directory changed "created $dir"; else step directory failed "could not make $dir"; exit 0; fi; fi`;
}

/** A step run as the deploy user: its script's exit code says changed (0), unchanged or failed. */
function userStep(name: string, script: string, changed: string, unchanged: string, failed: string): Script {
  return sh`as_user ${script}; case $? in 0) step ${name} changed ${changed} ;; ${UNCHANGED}) step ${name} unchanged ${unchanged} ;; *) step ${name} failed ${failed} ;; esac`;
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
    sh`user=${o.user}; path=${t.path}; home=$(getent passwd "$user" | cut -d: -f6); ug=$(id -g "$user" 2>/dev/null) || { step directory failed "no user $user"; exit 0; }`,
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
  if (o.systemdDir !== undefined) {
    const unit = sh`${o.systemdDir}/${unitName(t)}`;
    const text = systemdUnit(t, o.user, '@DIR@');
    lines.push(
      sh`unit=$(printf '%s' ${text} | sed "s|@DIR@|$dir|g"); if [ -f ${unit} ] && [ "$(cat ${unit}; echo x)" = "$unit"x ]; then what=unchanged; elif mkdir -p ${o.systemdDir} && printf '%s' "$unit" > ${unit}.tmp && mv -f ${unit}.tmp ${unit}; then what=changed; else step systemd failed 'could not write the unit'; what=; fi`,
      sh`if [ -z "$what" ]; then :; elif ! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then step systemd "$what" ${`${unitName(t)} written; not enabled: systemd does not run here`}; elif systemctl is-enabled --quiet ${unitName(t)} 2>/dev/null && [ "$what" = unchanged ]; then step systemd unchanged ${`${unitName(t)} enabled`}; elif systemctl daemon-reload && systemctl enable --quiet ${unitName(t)}; then step systemd changed ${`${unitName(t)} written and enabled`}; else step systemd failed 'systemctl enable failed'; fi`,
    );
  }
  return named('setupTenant', new Script(lines.map(String).join('\n')));
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
