/**
 * The remote verbs of the blue-green strategy. A tenant's two slots are Compose projects of their own
 * (PROJECT-blue, PROJECT-green) run from the tenant's compose files; each slot's variables are a copy
 * of .env with the release's image references and the slot's port (`.fleet/slots/SLOT.env`, passed with
 * --env-file), so what a slot runs is recorded beside it. `.env` keeps the live release (what `prepare`
 * reads as the running one) and `.fleet/slots/active` names the live slot.
 */
import type { SlotName, Tenant } from '../registry/model';
import { ENV_VAR, IMAGE_REF } from '../registry/patterns';
import { engineOf, pinApiVersion } from './compose';
import { containersOf } from './containers';
import { ENV_PROGRAM } from './env-file';
import { inPrivateDir, tenantFromPrivate } from './private-dir';
import { named, Script, sh } from './shell';
import { enter, STATE_DIR, touchLock } from './tenant-dir';

export const SLOTS_DIR = `${STATE_DIR}/slots`;
export const ACTIVE_FILE = `${SLOTS_DIR}/active`;
export const slotEnvFile = (slot: SlotName) => `${SLOTS_DIR}/${slot}.env`;

/** Exit code of `readSlots` when the proxy did not answer. */
export const PROXY_DOWN = 40;

/** `NAME=value` lines for ENV_PROGRAM, each checked (the values reach a file the shell reads). */
function assignments(refs: Readonly<Record<string, string>>, extra: Record<string, string> = {}): string {
  for (const [k, v] of Object.entries(refs))
    if (!ENV_VAR.re.test(k) || !IMAGE_REF.test(v))
      throw new Error(
        `refusing to write ${JSON.stringify(`${k}=${v}`)}: not an image variable and reference`,
      );
  for (const [k, v] of Object.entries(extra))
    if (!ENV_VAR.re.test(k) || !/^[0-9A-Za-z]+$/.test(v)) throw new Error(`refusing to write ${k}=${v}`);
  return Object.entries({ ...refs, ...extra })
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

/**
 * Writes FILE (`.env` or a file in SLOTS_DIR) as a copy of .env with `set` applied, in a private
 * directory beside it (private-dir.ts: no name anyone else could turn into a link is written through),
 * then renamed over it (atomic). .env is read through a hard link in that directory, refused unless a
 * regular file.
 */
function writeFromEnv(file: string, set: string): Script {
  const slash = file.lastIndexOf('/');
  const dir = slash < 0 ? '.' : file.slice(0, slash);
  const top = tenantFromPrivate(dir);
  const link = sh`ln -P -- ${`${top}/.env`} env && [ -f env ] && [ ! -L env ]`;
  const sameMode = sh`chmod "$(stat -c %a env)" new && { chown "$(stat -c %u:%g env)" new 2>/dev/null || :; }`;
  return inPrivateDir(
    dir,
    sh`${link} && FLEET_SET=${set} awk ${ENV_PROGRAM} env > new && ${sameMode} && mv -fT -- new ${`../${file.slice(slash + 1)}`}`,
  );
}

/** Writes the live slot's name to ACTIVE_FILE the same way (in a private directory, then renamed). */
function writeActive(slot: SlotName): Script {
  return inPrivateDir(SLOTS_DIR, sh`printf '%s\n' ${slot} > new && mv -fT -- new ../active`);
}

/** The image IDs of a project's running containers, after a `@@name` line. */
function runningImages(t: Tenant, section: string, project: string): Script {
  const engine = engineOf(t.compose.command);
  const ids = sh`ids=$(${containersOf(t, project)}) || exit 1`;
  return sh`{ echo ${`@@${section}`}; ${ids}; if [ -n "$ids" ]; then ${engine} inspect --format '{{.Image}}' $ids || exit 1; fi; }`;
}

/**
 * One round trip before anything changes: the live slot's name, each slot's recorded release and
 * running images, the legacy (in-place) project's running images, and where the proxy sends the tenant
 * (exit PROXY_DOWN when it does not answer).
 */
export function readSlots(
  t: Tenant,
  projects: { base: string; blue: string; green: string },
  proxyRead: Script,
): Script {
  const names = t.images.map((i) => i.variable).join('|');
  const slot = (s: SlotName) => {
    const env = sh`echo ${`@@env ${s}`}; { grep -E ${`^(${names})=`} ${slotEnvFile(s)} 2>/dev/null || :; }`;
    return sh`{ ${env}; ${runningImages(t, `running ${s}`, projects[s])}; }`;
  };
  const active = sh`echo '@@active' && { cat ${ACTIVE_FILE} 2>/dev/null || :; }`;
  const legacy = runningImages(t, 'running legacy', projects.base);
  const proxy = sh`echo '@@proxy' && { ${proxyRead} || exit ${PROXY_DOWN}; }`;
  return named(
    'readSlots',
    sh`${enter(t)} && ${touchLock} && ${active} && ${slot('blue')} && ${slot('green')} && ${legacy} && ${proxy}`,
  );
}

export interface SlotState {
  refs: Record<string, string>;
  running: string[];
}

export interface Slots {
  active?: SlotName;
  blue: SlotState;
  green: SlotState;
  legacyRunning: string[];
  proxy: string;
}

/** Reads `readSlots`' output; every value is checked like user input. */
export function parseSlots(stdout: string): Slots {
  const out: Slots = {
    blue: { refs: {}, running: [] },
    green: { refs: {}, running: [] },
    legacyRunning: [],
    proxy: '',
  };
  let section = '';
  for (const raw of stdout.split('\n')) {
    const line = raw.trimEnd();
    const marker = section === 'proxy' ? null : /^@@(\w+(?: \w+)?)$/.exec(line);
    if (marker) {
      section = marker[1]!;
      continue;
    }
    if (section === 'proxy') out.proxy += `${raw}\n`;
    else if (section === 'active' && (line === 'blue' || line === 'green')) out.active = line;
    else if (section.startsWith('env ')) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (m && IMAGE_REF.test(m[2]!)) out[section.slice(4) as SlotName].refs[m[1]!] = m[2]!;
    } else if (section.startsWith('running ') && /^(sha256:)?[a-f0-9]{64}$/.test(line.trim())) {
      const id = line.trim().startsWith('sha256:') ? line.trim() : `sha256:${line.trim()}`;
      const which = section.slice(8);
      if (which === 'legacy') out.legacyRunning.push(id);
      else out[which as SlotName].running.push(id);
    }
  }
  return out;
}

/** The compose command for a slot: its own env file and project. */
function slotCompose(t: Tenant, slot: SlotName, project: string): string[] {
  const argv = t.compose.command.split(' ');
  for (const f of t.compose.files) argv.push('-f', f);
  return [...argv, '--env-file', slotEnvFile(slot), '-p', project];
}

/**
 * Records the slot's release and port in its env file, then `compose up -d` its project (with the
 * engine's API version for Compose v1, when given: `pinApiVersion`).
 */
export function startSlot(
  t: Tenant,
  slot: SlotName,
  project: string,
  refs: Readonly<Record<string, string>>,
  port: { variable: string; value: number },
  apiVersion?: string,
): Script {
  const set = assignments(refs, { [port.variable]: String(port.value) });
  const pin = pinApiVersion(t, apiVersion, slotEnvFile(slot));
  const up = sh`${pin ? sh`${pin} && ` : sh``}${slotCompose(t, slot, project)} up -d ${t.compose.services ?? []}`;
  return named(
    'startSlot',
    sh`${enter(t)} && ${touchLock} && mkdir -p ${SLOTS_DIR} && ${writeFromEnv(slotEnvFile(slot), set)} && ${up}`,
  );
}

/** Records the live release: its image references in .env, and the live slot's name (none: legacy). */
export function recordLive(
  t: Tenant,
  slot: SlotName | undefined,
  refs: Readonly<Record<string, string>>,
): Script {
  const active = slot ? writeActive(slot) : sh`rm -f -- ${ACTIVE_FILE}`;
  return named(
    'recordLive',
    sh`${enter(t)} && ${touchLock} && mkdir -p ${SLOTS_DIR} && ${writeFromEnv('.env', assignments(refs))} && ${active}`,
  );
}

/** Stops a project's running containers (SIGTERM, then SIGKILL after `graceS`); kept, so a rollback can start them. */
export function stopProject(t: Tenant, project: string, graceS = 10): Script {
  const engine = engineOf(t.compose.command);
  const stop = sh`[ -z "$ids" ] || ${engine} stop -t ${graceS} $ids >/dev/null`;
  return named(
    'stopProject',
    sh`${enter(t)} && ${touchLock} && { ids=$(${containersOf(t, project)}) || exit 1; ${stop}; }`,
  );
}

/** The number of established TCP connections to a port on the server: requests still in flight to a slot. */
export function connectionsTo(port: number): Script {
  return named('connectionsTo', sh`ss -Htn state established ${`( sport = :${port} )`} | wc -l`);
}

/** A proxy script, run in the tenant directory (where relative paths and the user's commands start). */
export function inTenant(t: Tenant, script: Script): Script {
  return named(script.verb ?? 'proxy', sh`${enter(t)} && ${touchLock} && ${script}`);
}
