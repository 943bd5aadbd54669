/**
 * What runs on a tenant, read in ONE round trip without taking the lock: the image variables in .env,
 * each container of its Compose project (name, state, image ID, Compose's config-hash label, health),
 * the running images' digests, a lock left in place (owner, age and lease) and the history's tail. Sections of
 * the output start with `@@name`; every value is checked before use (the server is not trusted).
 */
import { SLOTS, type SlotName, type Tenant } from '../registry/model';
import { COMPOSE_PROJECT, IMAGE_REF } from '../registry/patterns';
import { CONFIG_HASH_LABEL, deriveProject, engineOf, PROJECT_VAR } from './compose';
import { containerState, containersOf, type ContainerState } from './containers';
import { normalizeId, parseImages } from './images';
import { LEASE_MARKER, parseLeaseMarker } from './lock';
import { HISTORY_FILE, LOCK_DIR } from './tenant-dir';
import { ACTIVE_FILE, slotEnvFile } from './blue-green';
import { inspectFiles } from './files';
import { named, Script, sh } from './shell';

const INSPECT = [
  '{{.Name}}',
  '{{.State.Status}}',
  '{{.Image}}',
  `{{index .Config.Labels "${CONFIG_HASH_LABEL}"}}`,
  '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}',
].join('|');

/**
 * The inspection of a tenant: `part` is its strategy's (`composeInspection`, `currentInspection`,
 * `slotsInspection`), then a lock left in place and the history's tail.
 */
export function inspectTenant(t: Tenant, part: Script, historyLines = 50): Script {
  const lines: Script[] = [sh`cd -- ${t.path} 2>/dev/null || { echo '@@nodir'; exit 0; }`, part];
  const age = sh`$(( $(date +%s) - $(stat -c %Y ${LOCK_DIR}) ))`;
  const owner = sh`head -c 2048 ${`${LOCK_DIR}/owner`} 2>/dev/null`;
  lines.push(sh`if [ -d ${LOCK_DIR} ]; then echo "@@lock ${age}"; ${owner}; echo; ${LEASE_MARKER}; fi`);
  if (t.files) lines.push(inspectFiles());
  lines.push(sh`echo '@@history'; tail -n ${historyLines} ${HISTORY_FILE} 2>/dev/null; echo '@@end'`);
  return named('inspectTenant', new Script(lines.map(String).join('\n')));
}

/** A project's containers (every one, stopped too) after a `@@SECTION` line, then their images' digests. */
function containersSection(t: Tenant, section: string, project: Script): Script {
  const engine = engineOf(t.compose.command);
  const inspect = sh`${engine} inspect --format ${INSPECT} $ids`;
  const images = sh`$(${engine} inspect --format '{{.Image}}' $ids | sort -u)`;
  const digests = sh`${engine} image inspect --format '{{.Id}}|{{json .RepoDigests}}' ${images} 2>/dev/null`;
  const ids = sh`ids=$(${containersOf(t, project, true)}) || ids=`;
  return sh`echo ${`@@${section}`}; ${ids}; if [ -n "$ids" ]; then ${inspect}; echo '@@images'; ${digests}; fi`;
}

/** The in-place stack's part: its project, .env's image variables and each container of the project. */
export function composeInspection(t: Tenant): Script {
  const names = t.images.map((i) => i.variable).join('|');
  return new Script(
    [
      deriveProject(t),
      sh`echo '@@env'; grep -E ${`^(export[[:space:]]+)?(${names})=`} .env 2>/dev/null`,
      containersSection(t, 'containers', PROJECT_VAR),
    ].join('\n'),
  );
}

/** The user's commands' part: the first line their `current` command prints. */
export function currentInspection(current: string): Script {
  return sh`echo '@@current'; sh -c ${current} 2>/dev/null | head -n 1`;
}

/**
 * Blue-green's part: the in-place one (.env holds the live release; the project is the stack a tenant
 * ran before it moved to blue-green), the live slot's name, and each slot's recorded release and containers.
 */
export function slotsInspection(t: Tenant): Script {
  const names = t.images.map((i) => i.variable).join('|');
  const slot = (s: SlotName) => {
    const env = sh`echo ${`@@slotenv ${s}`}; grep -E ${`^(${names})=`} ${slotEnvFile(s)} 2>/dev/null`;
    return sh`${env}; ${containersSection(t, `slotcontainers ${s}`, new Script(`$project-${s}`))}`;
  };
  return new Script(
    [composeInspection(t), sh`echo '@@active'; cat ${ACTIVE_FILE} 2>/dev/null`, ...SLOTS.map(slot)].join(
      '\n',
    ),
  );
}

export { CONFIG_HASH_LABEL } from './compose';
export { CONTAINER_STATES, type ContainerState } from './containers';

export interface ContainerInfo {
  name: string;
  state: ContainerState;
  image: string;
  configHash?: string;
  health: string;
}

export interface TenantInspection {
  /** The lines of the `@@files` section (inspectFiles), when the tenant ships files. */
  files?: string[];
  /** The tenant directory does not exist. */
  noDirectory: boolean;
  project?: string;
  env: Record<string, string>;
  current?: string;
  containers: ContainerInfo[];
  /** image ID → its repository digests */
  digests: Record<string, string[]>;
  /** Blue-green: the live slot (as the last promote recorded it), and each slot's recorded release and containers. */
  slots?: { live?: SlotName } & Record<SlotName, SlotInspection>;
  /** A lock in place: its age, its owner (server text) and its lease, when it has one (the server's clock). */
  lock?: { ageS: number; owner: string; lease?: { expiresS: number; leftS: number } };
  history: string[];
}

export interface SlotInspection {
  refs: Record<string, string>;
  containers: ContainerInfo[];
}

const NAME = /^\/?[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const WORD = /^[a-z]{1,20}$/;
const HASH = /^[a-f0-9]{64}$/;

function parseContainer(line: string): ContainerInfo | undefined {
  const [name = '', state = '', image = '', hash = '', health = ''] = line.split('|');
  if (!NAME.test(name) || !WORD.test(state) || !/^(sha256:)?[a-f0-9]{64}$/.test(image)) return undefined;
  return {
    name: name.replace(/^\//, ''),
    state: containerState(state),
    image: normalizeId(image),
    ...(HASH.test(hash) ? { configHash: hash } : {}),
    health: WORD.test(health) ? health : 'unknown',
  };
}

export function parseInspection(stdout: string): TenantInspection {
  const out: TenantInspection = { noDirectory: false, env: {}, containers: [], digests: {}, history: [] };
  let section = '';
  let slot: SlotInspection | undefined;
  const lockLines: string[] = [];
  const imageLines: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trimEnd();
    const marker = /^@@(\w+)(?: (.*))?$/.exec(line);
    if (marker) {
      section = marker[1]!;
      slot = slotSection(out, section, marker[2]);
      if (section === 'nodir') out.noDirectory = true;
      if (section === 'project' && COMPOSE_PROJECT.re.test(marker[2] ?? '')) out.project = marker[2];
      if (section === 'lock') out.lock = { ageS: Number(marker[2]) || 0, owner: '' };
      const lease = section === 'lease' && out.lock ? parseLeaseMarker(marker[2]) : undefined;
      if (lease) out.lock!.lease = lease; // the last marker counts: ours follows the owner's text
      continue;
    }
    if (!line.trim()) continue;
    if (section === 'env') readEnvLine(out.env, line);
    else if (section === 'slotenv' && slot) readEnvLine(slot.refs, line, IMAGE_REF);
    else if (section === 'containers' || (section === 'slotcontainers' && slot)) {
      const c = parseContainer(line);
      if (c) (slot ?? out).containers.push(c);
    } else if (section === 'active' && out.slots && (SLOTS as readonly string[]).includes(line.trim()))
      out.slots.live = line.trim() as SlotName;
    else if (section === 'images') imageLines.push(line);
    else if (section === 'files') (out.files ??= []).push(line);
    else if (section === 'lock') lockLines.push(line);
    else if (section === 'current') out.current = line.trim().slice(0, 200);
    else if (section === 'history') out.history.push(line);
  }
  for (const i of parseImages(imageLines.join('\n'))) out.digests[i.id] = i.digests;
  if (out.lock) out.lock.owner = lockLines.join('\n').trim();
  return out;
}

/** The state of a stack from its containers': the worst one (none: missing). */
export function stackState(containers: readonly { state: ContainerState }[]): ContainerState {
  const states = containers.map((c) => c.state);
  if (states.length === 0) return 'missing';
  for (const s of ['restarting', 'paused', 'stopped'] as const) if (states.includes(s)) return s;
  return 'running';
}

/** A `NAME=value` line of an env file into `into` (a value checked by `check`, when given). */
function readEnvLine(into: Record<string, string>, line: string, check?: { test(v: string): boolean }): void {
  const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
  const value = m?.[2]!.trim().replace(/^(["'])(.*)\1$/, '$2');
  if (m && value !== undefined && (!check || check.test(value))) into[m[1]!] = value;
}

/** The slot a `@@slotenv SLOT` or `@@slotcontainers SLOT` section is of (other sections: none). */
function slotSection(
  out: TenantInspection,
  section: string,
  name: string | undefined,
): SlotInspection | undefined {
  if (section === 'active') out.slots ??= emptySlots();
  if (section !== 'slotenv' && section !== 'slotcontainers') return undefined;
  if (!(SLOTS as readonly (string | undefined)[]).includes(name)) return undefined;
  out.slots ??= emptySlots();
  return out.slots[name as SlotName];
}

const emptySlots = () => ({ blue: { refs: {}, containers: [] }, green: { refs: {}, containers: [] } });

/**
 * Removes images (`dryRun`: only measures them): prints `@@image REF BYTES` for each present, then
 * `@@removed REF` or `@@kept REF` (the engine refused: a container, even a stopped one, still uses it).
 */
export function removeImages(t: Tenant, refs: readonly string[], dryRun: boolean): Script {
  const engine = engineOf(t.compose.command);
  const size = sh`size=$(${engine} image inspect --format '{{.Size}}' -- "$ref" 2>/dev/null)`;
  const remove = dryRun
    ? sh``
    : sh` if ${engine} image rm -- "$ref" >/dev/null 2>&1; then echo "@@removed $ref"; else echo "@@kept $ref"; fi;`;
  return named(
    'removeImages',
    sh`for ref in ${[...refs]}; do ${size} || continue; echo "@@image $ref $size";${remove} done`,
  );
}
