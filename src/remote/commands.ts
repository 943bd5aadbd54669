/**
 * The remote verbs of a deploy, one builder each, named after what it does on the server. Builders only
 * build Scripts (see shell.ts); deploy/ runs them and parse*() read their output. Every script starts by
 * entering the tenant's directory, so a wrong path fails the first step with its own exit code.
 */
import type { ComposeCommand, Image, Tenant } from '../registry/model';
import { IMAGE_DIGEST, IMAGE_TAG } from '../registry/patterns';
import { ConfigurationError } from '../errors';
import { envPrefix, Script, sh } from './shell';

/** The tool's own files in a tenant directory. */
export const STATE_DIR = '.fleet';
export const LOCK_DIR = `${STATE_DIR}/lock`;
export const HISTORY_FILE = `${STATE_DIR}/history.jsonl`;
export const BACKUP_DIR = `${STATE_DIR}/backups`;

/** Exit codes of preflight's checks, so each failure gets its own message. */
export const PREFLIGHT = { noDirectory: 10, noComposeFile: 11, noComposeCommand: 12, noEnvFile: 13 } as const;

/** A version is an image tag or a digest; either way the same for every image of the tenant. */
export function checkVersion(version: string, source = '--version'): string {
  if (IMAGE_TAG.re.test(version) || IMAGE_DIGEST.re.test(version)) return version;
  throw new ConfigurationError([
    {
      path: [],
      source,
      message: `${JSON.stringify(version)} is neither an image tag nor a digest`,
      hint: `use ${IMAGE_TAG.valid} (e.g. "v1.4.2"), or ${IMAGE_DIGEST.valid}`,
    },
  ]);
}

export function imageRef(image: Image, version: string): string {
  return version.startsWith('sha256:') ? `${image.repository}@${version}` : `${image.repository}:${version}`;
}

/** The version part of an image reference: the digest, else the tag, else "latest". */
export function versionOf(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(at + 1);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(colon + 1) : 'latest';
}

/** The container engine CLI behind a compose command (for pull, inspect, image rm). */
export function engineOf(command: ComposeCommand): 'docker' | 'podman' {
  return command.startsWith('podman') ? 'podman' : 'docker';
}

export function composeArgv(t: Tenant): string[] {
  const argv = t.compose.command.split(' ');
  for (const f of t.compose.files) argv.push('-f', f);
  if (t.compose.project) argv.push('-p', t.compose.project);
  return argv;
}

const enter = (t: Tenant) => sh`cd -- ${t.path}`;

export function preflight(t: Tenant): Script {
  const checks: Script[] = [sh`cd -- ${t.path} 2>/dev/null || exit ${PREFLIGHT.noDirectory}`];
  if (!t.commands) {
    for (const f of t.compose.files)
      checks.push(sh`test -f ${f} || { printf '%s\n' ${f}; exit ${PREFLIGHT.noComposeFile}; }`);
    checks.push(sh`test -f .env || exit ${PREFLIGHT.noEnvFile}`);
    checks.push(
      sh`${t.compose.command.split(' ')} version >/dev/null 2>&1 || exit ${PREFLIGHT.noComposeCommand}`,
    );
  }
  checks.push(sh`df -Pk . | awk 'NR==2 {print "free_kb=" $4}'`);
  return new Script(checks.map(String).join('\n'));
}

export function parsePreflight(stdout: string): { freeMb?: number } {
  const m = /free_kb=(\d+)/.exec(stdout);
  return m ? { freeMb: Math.floor(Number(m[1]) / 1024) } : {};
}

/** Takes the lock (atomic mkdir) and writes the owner, or reports who holds it and for how long. */
export function acquireLock(t: Tenant, owner: string): Script {
  return sh`${enter(t)} && mkdir -p ${STATE_DIR} && if mkdir ${LOCK_DIR} 2>/dev/null; then printf '%s\n' ${owner} > ${LOCK_DIR}/owner && echo acquired; else echo held; cat ${LOCK_DIR}/owner 2>/dev/null || echo '{}'; echo "age=$(( $(date +%s) - $(stat -c %Y ${LOCK_DIR}) ))"; fi`;
}

export function parseLock(
  stdout: string,
): { acquired: true } | { acquired: false; owner: string; ageS: number } {
  const lines = stdout.trim().split('\n');
  if (lines[0] === 'acquired') return { acquired: true };
  const age = /^age=(-?\d+)$/.exec(lines.at(-1) ?? '');
  return { acquired: false, owner: lines.slice(1, -1).join('\n').trim(), ageS: age ? Number(age[1]) : 0 };
}

/** Removes the lock only when it is still ours (its owner holds our token). */
export function releaseLock(t: Tenant, token: string): Script {
  return sh`${enter(t)} && if grep -qF -- ${token} ${LOCK_DIR}/owner 2>/dev/null; then rm -rf -- ${LOCK_DIR} && echo released; else echo not-ours; fi`;
}

/** Removes a lock whatever its owner, but only when it is older than `minAgeS` (a stale lock). */
export function breakLock(t: Tenant, minAgeS: number): Script {
  return sh`${enter(t)} && age=$(( $(date +%s) - $(stat -c %Y ${LOCK_DIR}) )) && if [ "$age" -ge ${minAgeS} ]; then rm -rf -- ${LOCK_DIR} && echo broken; else echo fresh; fi`;
}

/** The image variables in .env and the image IDs of the containers running now. */
export function readCurrent(t: Tenant): Script {
  if (t.commands) return sh`${enter(t)} && sh -c ${t.commands.current}`;
  const names = t.images.map((i) => i.variable).join('|');
  const engine = engineOf(t.compose.command);
  return sh`${enter(t)} && { grep -E ${`^(export[[:space:]]+)?(${names})=`} .env || true; } && echo '--- running' && ids=$(${composeArgv(t)} ps -q ${t.compose.services ?? []}) && if [ -n "$ids" ]; then ${engine} inspect --format '{{.Image}}' $ids; fi`;
}

export interface Current {
  /** variable → image reference, as written in .env */
  env: Record<string, string>;
  /** image IDs of the running containers (normalized to sha256:…) */
  running: string[];
}

export function normalizeId(id: string): string {
  const s = id.trim();
  return s.startsWith('sha256:') ? s : `sha256:${s}`;
}

export function parseCurrent(stdout: string): Current {
  const [envPart, runPart = ''] = stdout.split('--- running');
  const env: Record<string, string> = {};
  for (const line of envPart!.split('\n')) {
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.trim().replace(/^(["'])(.*)\1$/, '$2');
  }
  const running = runPart
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map(normalizeId);
  return { env, running: [...new Set(running)] };
}

export function pullImage(t: Tenant, ref: string): Script {
  return sh`${engineOf(t.compose.command)} pull -q ${ref}`;
}

/** ID and repository digests of a local image. */
export function inspectImage(t: Tenant, ref: string): Script {
  return sh`${engineOf(t.compose.command)} image inspect --format '{{.Id}}|{{json .RepoDigests}}' ${ref}`;
}

export function parseImage(stdout: string): { id: string; digests: string[] } {
  const [id = '', json = '[]'] = stdout.trim().split('\n')[0]!.split('|');
  let digests: string[];
  try {
    digests = (JSON.parse(json) as string[] | null) ?? [];
  } catch {
    digests = [];
  }
  return { id: normalizeId(id), digests };
}

/**
 * Sets image variables in .env atomically: the new file is written beside it (same owner and mode, via
 * cp -p), then renamed over it. Other lines, comments and order are untouched; a variable that is not
 * there yet is appended. `export NAME=` lines keep their `export`.
 */
export function switchEnv(t: Tenant, assignments: Readonly<Record<string, string>>): Script {
  const spec = Object.entries(assignments)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  const program = new Script(
    `'BEGIN { n = split(spec, a, "\\n"); for (i = 1; i <= n; i++) { eq = index(a[i], "="); val[substr(a[i], 1, eq - 1)] = substr(a[i], eq + 1) } }
{ for (k in val) if ($0 ~ ("^(export[ \\t]+)?" k "=")) { print (($0 ~ /^export[ \\t]/) ? "export " : "") k "=" val[k]; seen[k] = 1; next } print }
END { for (k in val) if (!(k in seen)) print k "=" val[k] }'`,
  );
  return sh`${enter(t)} && cp -p .env .env.fleet-new && awk -v spec=${spec} ${program} .env > .env.fleet-new && mv -f .env.fleet-new .env`;
}

export function composeUp(t: Tenant): Script {
  return sh`${enter(t)} && ${composeArgv(t)} up -d ${t.compose.services ?? []}`;
}

/** The containers' own HEALTHCHECK states: healthy, unhealthy, starting, or none. */
export function containerHealth(t: Tenant): Script {
  return sh`${enter(t)} && ids=$(${composeArgv(t)} ps -q ${t.compose.services ?? []}) && [ -n "$ids" ] && ${engineOf(t.compose.command)} inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids`;
}

export function runUserCommand(t: Tenant, command: string, env: Readonly<Record<string, string>>): Script {
  return sh`${enter(t)} && ${envPrefix(env)} sh -c ${command}`;
}

export function backup(t: Tenant, stamp: string): Script {
  const b = t.backup!;
  const files = ['.env', ...t.compose.files, ...b.paths];
  const pre = b.command ? sh`sh -c ${b.command} && ` : sh``;
  return sh`${enter(t)} && umask 077 && mkdir -p ${BACKUP_DIR} && ${pre}tar -czf ${`${BACKUP_DIR}/${stamp}.tar.gz`} -- ${files} && find ${BACKUP_DIR} -name '*.tar.gz' -mtime +${b.keepDays} -delete && echo ${`${BACKUP_DIR}/${stamp}.tar.gz`}`;
}

export function appendHistory(t: Tenant, line: string): Script {
  return sh`${enter(t)} && mkdir -p ${STATE_DIR} && printf '%s\n' ${line} >> ${HISTORY_FILE}`;
}

export function readHistory(t: Tenant, lines = 500): Script {
  return sh`${enter(t)} && { tail -n ${lines} ${HISTORY_FILE} 2>/dev/null || true; }`;
}

/** Local images of the tenant's repositories, as repository:tag lines. */
export function listImages(t: Tenant): Script {
  const engine = engineOf(t.compose.command);
  return new Script(
    t.images
      .map((i) => sh`${engine} image ls --format '{{.Repository}}:{{.Tag}}' ${i.repository}`.text)
      .join('; '),
  );
}

/** Removes images; an image still used by a container is refused by the engine and kept. */
export function removeImages(t: Tenant, refs: readonly string[]): Script {
  return sh`${engineOf(t.compose.command)} image rm ${refs} 2>&1 || true`;
}
