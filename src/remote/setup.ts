/**
 * The remote verbs of `fleet-deploy setup-server`, run as a privileged user (root, or through `sudo -n`):
 * each script is a list of idempotent steps that look before they change, and print one line per step,
 * `@@step NAME unchanged|changed|failed DETAIL`. Nothing a step writes is printed: the secrets of a new
 * `.env` are made on the server (`/dev/urandom`) and written to the file, never to the output.
 */
import type { Tenant } from '../registry/model';
import { ENV_VAR } from '../registry/patterns';
import { composeArgv } from './commands';
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

/** The shell function every setup script reports through. */
const STEP_FN = new Script(`step() { printf '@@step %s %s %s\\n' "$1" "$2" "$3"; }`);

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
    sh`if [ -z "$home" ]; then step key failed 'no home directory'; elif [ -f "$home/.ssh/authorized_keys" ] && grep -qxF -- "$key" "$home/.ssh/authorized_keys"; then step key unchanged 'authorized'; elif install -d -m 700 -o "$user" -g "$ug" "$home/.ssh" && printf '%s\n' "$key" >> "$home/.ssh/authorized_keys" && chown "$user:$ug" "$home/.ssh/authorized_keys" && chmod 600 "$home/.ssh/authorized_keys"; then step key changed "added to $home/.ssh/authorized_keys"; else step key failed 'could not write authorized_keys'; fi`,
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

/** A new .env: secrets made here, the template filled in a private temporary file, then renamed. */
function writeEnv(template: string, secrets: readonly Secret[]): Script {
  const make = secrets.map((s, i) => {
    const v = `FLEET_S_${i + 1}`; // a constant name: the value is only ever in this variable
    return sh`${new Script(v)}=$(head -c ${s.length * 2 + 64} /dev/urandom | base64 | tr -dc A-Za-z0-9 | head -c ${s.length}); [ ${new Script(`\${#${v}}`)} -eq ${s.length} ] || ok=; export ${new Script(v)}`;
  });
  const placeholders = secrets.map((s) => s.placeholder).join('\n');
  return sh`( umask 077; ok=1; ${new Script(make.map(String).join('; ') || ':')}; [ -n "$ok" ] && tmp=$(mktemp "$dir/.env.fleet-XXXXXX") && { printf '%s' ${template} | FLEET_PH=${placeholders} awk ${FILL_PROGRAM} > "$tmp" && chown "$user:$ug" "$tmp" && chmod 600 "$tmp" && mv -f -- "$tmp" "$dir/.env" || { rm -f -- "$tmp"; false; }; } )`;
}

/** A file's content put in place when it differs: a temporary file beside it, renamed over it. */
function putFile(path: Script, text: string, mode: string, owner: Script): Script {
  return sh`tmp=$(mktemp ${path}.fleet-XXXXXX) && printf '%s' ${text} > "$tmp" && chmod ${mode} "$tmp" && chown ${owner} "$tmp" && mv -f -- "$tmp" ${path}`;
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
    sh`user=${o.user}; path=${t.path}; home=$(getent passwd "$user" | cut -d: -f6); ug=$(id -g "$user" 2>/dev/null) || { step directory failed "no user $user"; exit 0; }`,
    new Script('case $path in /*) dir=$path ;; *) dir="$home/$path" ;; esac; dir=${dir%/}'),
    sh`if [ -d "$dir" ] && [ "$(stat -c %U "$dir")" = "$user" ]; then step directory unchanged "$dir"; elif [ -d "$dir" ] && chown "$user:$ug" "$dir"; then step directory changed "$dir now owned by $user"; elif mkdir -p -- "$dir" && chown "$user:$ug" "$dir" && chmod 750 "$dir"; then step directory changed "created $dir"; else step directory failed "could not make $dir"; exit 0; fi`,
  ];
  if (o.compose !== undefined) {
    const target = sh`"$dir"/${file}`;
    lines.push(
      sh`if [ -f ${target} ] && [ "$(cat ${target}; echo x)" = ${`${o.compose}x`} ]; then step compose unchanged ${file}; elif ${putFile(target, o.compose, '644', sh`"$user:$ug"`)}; then step compose changed ${`wrote ${file}`}; else rm -f -- "$tmp"; step compose failed ${`could not write ${file}`}; fi`,
    );
  }
  const secrets = o.envTemplate === undefined ? [] : secretsOf(o.envTemplate);
  if (typeof secrets === 'string') throw new Error(secrets); // checked by the caller first
  const template =
    o.envTemplate ?? '# made by fleet-deploy setup-server: the image variables are set by the first deploy';
  const made = secrets.length
    ? `made with ${secrets.length} secret(s) generated on the server, mode 0600`
    : 'made, mode 0600';
  lines.push(
    sh`if [ -e "$dir/.env" ]; then step env unchanged 'kept: an existing .env is never overwritten'; elif ${writeEnv(template, secrets)}; then step env changed ${made}; else step env failed 'could not write .env'; fi`,
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
