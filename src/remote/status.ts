/**
 * What runs on a tenant, read in ONE round trip without taking the lock: the image variables in .env,
 * each container of its Compose project (name, state, image ID, Compose's config-hash label, health),
 * the running images' digests, a lock left in place (owner, age and lease) and the history's tail. Sections of
 * the output start with `@@name`; every value is checked before use (the server is not trusted).
 */
import type { Tenant } from '../registry/model';
import { COMPOSE_PROJECT } from '../registry/patterns';
import {
  CONFIG_HASH_LABEL,
  containerState,
  containersOf,
  type ContainerState,
  deriveProject,
  engineOf,
  HISTORY_FILE,
  LEASE_MARKER,
  LOCK_DIR,
  normalizeId,
  parseLeaseMarker,
  parseImages,
  PROJECT_VAR,
} from './commands';
import { inspectFiles } from './files';
import { named, Script, sh } from './shell';

const INSPECT = `{{.Name}}|{{.State.Status}}|{{.Image}}|{{index .Config.Labels "${CONFIG_HASH_LABEL}"}}|{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}`;

export function inspectTenant(t: Tenant, historyLines = 50): Script {
  const lines: Script[] = [sh`cd -- ${t.path} 2>/dev/null || { echo '@@nodir'; exit 0; }`];
  if (t.commands) {
    lines.push(sh`echo '@@current'; sh -c ${t.commands.current} 2>/dev/null | head -n 1`);
  } else {
    const engine = engineOf(t.compose.command);
    const names = t.images.map((i) => i.variable).join('|');
    lines.push(deriveProject(t));
    lines.push(sh`echo '@@env'; grep -E ${`^(export[[:space:]]+)?(${names})=`} .env 2>/dev/null`);
    lines.push(
      sh`echo '@@containers'; ids=$(${containersOf(t, PROJECT_VAR, true)}) || ids=; if [ -n "$ids" ]; then ${engine} inspect --format ${INSPECT} $ids; echo '@@images'; ${engine} image inspect --format '{{.Id}}|{{json .RepoDigests}}' $(${engine} inspect --format '{{.Image}}' $ids | sort -u) 2>/dev/null; fi`,
    );
  }
  lines.push(
    sh`if [ -d ${LOCK_DIR} ]; then echo "@@lock $(( $(date +%s) - $(stat -c %Y ${LOCK_DIR}) ))"; head -c 2048 ${`${LOCK_DIR}/owner`} 2>/dev/null; echo; ${LEASE_MARKER}; fi`,
  );
  if (t.files) lines.push(inspectFiles());
  lines.push(sh`echo '@@history'; tail -n ${historyLines} ${HISTORY_FILE} 2>/dev/null; echo '@@end'`);
  return named('inspectTenant', new Script(lines.map(String).join('\n')));
}

export { CONFIG_HASH_LABEL, CONTAINER_STATES, type ContainerState } from './commands';

export interface ContainerInfo {
  name: string;
  state: ContainerState;
  image: string;
  configHash?: string;
  health: string;
}

export interface TenantInspection {
  /** The tenant directory does not exist. */
  noDirectory: boolean;
  project?: string;
  env: Record<string, string>;
  current?: string;
  containers: ContainerInfo[];
  /** image ID → its repository digests */
  digests: Record<string, string[]>;
  /** A lock in place: its age, its owner (server text) and its lease, when it has one (the server's clock). */
  lock?: { ageS: number; owner: string; lease?: { expiresS: number; leftS: number } };
  history: string[];
  /** The lines of the `@@files` section (inspectFiles), when the tenant ships files. */
  files?: string[];
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
  const lockLines: string[] = [];
  const imageLines: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trimEnd();
    const marker = /^@@(\w+)(?: (.*))?$/.exec(line);
    if (marker) {
      section = marker[1]!;
      if (section === 'nodir') out.noDirectory = true;
      if (section === 'project' && COMPOSE_PROJECT.re.test(marker[2] ?? '')) out.project = marker[2];
      if (section === 'lock') out.lock = { ageS: Number(marker[2]) || 0, owner: '' };
      const lease = section === 'lease' && out.lock ? parseLeaseMarker(marker[2]) : undefined;
      if (lease) out.lock!.lease = lease; // the last marker counts: ours follows the owner's text
      continue;
    }
    if (!line.trim()) continue;
    if (section === 'env') {
      const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
      if (m) out.env[m[1]!] = m[2]!.trim().replace(/^(["'])(.*)\1$/, '$2');
    } else if (section === 'containers') {
      const c = parseContainer(line);
      if (c) out.containers.push(c);
    } else if (section === 'images') imageLines.push(line);
    else if (section === 'lock') lockLines.push(line);
    else if (section === 'current') out.current = line.trim().slice(0, 200);
    else if (section === 'history') out.history.push(line);
    else if (section === 'files') (out.files ??= []).push(line);
  }
  for (const i of parseImages(imageLines.join('\n'))) out.digests[i.id] = i.digests;
  if (out.lock) out.lock.owner = lockLines.join('\n').trim();
  return out;
}

/**
 * Removes images (`dryRun`: only measures them): prints `@@image REF BYTES` for each present, then
 * `@@removed REF` or `@@kept REF` (the engine refused: a container, even a stopped one, still uses it).
 */
export function removeImages(t: Tenant, refs: readonly string[], dryRun: boolean): Script {
  const engine = engineOf(t.compose.command);
  const remove = dryRun
    ? sh``
    : sh` if ${engine} image rm -- "$ref" >/dev/null 2>&1; then echo "@@removed $ref"; else echo "@@kept $ref"; fi;`;
  return named(
    'removeImages',
    sh`for ref in ${[...refs]}; do size=$(${engine} image inspect --format '{{.Size}}' -- "$ref" 2>/dev/null) || continue; echo "@@image $ref $size";${remove} done`,
  );
}
