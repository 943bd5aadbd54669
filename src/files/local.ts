/**
 * The local side of files shipped with a release (issue 25): reads each file of the caller's repository
 * once, refuses one whose path leads out of the repository (`..`, an absolute path, a link out of it) or
 * whose pin does not match, templates it per target when asked, hashes each distinct content once, and
 * gives each target its release's list (path → sha256, mode, size) with the bytes. Every problem is a
 * ConfigurationError naming the registry field, the value and the fix — before any server is contacted.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { ConfigurationError, type Problem } from '../errors';
import type { FileRelease } from '../deploy/files';
import { strategyFor } from '../deploy/strategies';
import { ComposeStrategy } from '../deploy/strategies/compose';
import type { ShippedEntry } from '../remote/files';
import type { Registry, Target, Tenant } from '../registry/model';
import { RELATIVE_FILE } from '../registry/patterns';
import { fill, placeholdersIn, TARGET_PLACEHOLDERS } from './template';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Read {
  bytes: Buffer;
  sha256: string;
  mode: number;
  /** The placeholders in it, when it is text that may be templated. */
  names?: string[];
}

export interface ShipOptions {
  /** The repository's root: `from` paths are relative to it. */
  root: string;
  /** The runner's environment, for the variables declared with `env`. */
  env: Readonly<Record<string, string | undefined>>;
  /** `validate`: a variable whose environment variable is not set here is no problem (it is for a deploy). */
  checkOnly?: boolean;
}

/** What was read: every target's release files, and the values to redact in what is shown. */
export interface ShippedFiles {
  releases: Map<string, FileRelease>;
  secrets: string[];
}

/** The repository's root: the checkout in a GitHub workflow ($GITHUB_WORKSPACE), else the working directory. */
export const repositoryRoot = (env: Readonly<Record<string, string | undefined>>): string =>
  env.GITHUB_WORKSPACE || process.cwd();

/** Reads, checks, templates and hashes the files every target ships (none: an empty map). */
export function shipFiles(targets: readonly Target[], o: ShipOptions): ShippedFiles {
  const problems: Problem[] = [];
  const reader = new RepoReader(o.root, problems);
  const releases = new Map<string, FileRelease>();
  const secrets = new Set<string>();
  const hashes = new Map<string, string>();
  for (const target of targets) {
    const files = target.tenant.files;
    if (!files) continue;
    if (!(strategyFor(target) instanceof ComposeStrategy)) {
      problems.push({
        path: [...target.tenant.at, 'files'],
        message: `tenant ${target.tenant.id} ships files, which only the in-place Compose strategy installs`,
        hint: 'remove "files" from it, or deploy it in place',
      });
      continue;
    }
    const values = variables(target, o, problems, secrets);
    if (!values) continue;
    const contents = new Map<string, Uint8Array>();
    const entries: ShippedEntry[] = [];
    for (const f of files.ship) {
      for (const [rel, read] of reader.expand(f.from, f.at)) {
        if (f.sha256 && read.sha256 !== f.sha256) {
          problems.push({
            path: [...f.at, 'sha256'],
            message: `${f.from} has sha256 ${read.sha256}, not the pinned ${f.sha256}`,
            hint: 'ship the pinned file, or pin the new one after checking it',
          });
          continue;
        }
        const to = f.to.endsWith('/') ? `${f.to}${rel}` : f.to;
        const entry = templated(read, f.template, values, hashes, problems, [...f.at, 'template'], f.from);
        if (!entry) continue;
        contents.set(entry.sha256, entry.bytes);
        entries.push({ to, sha256: entry.sha256, mode: read.mode, size: entry.bytes.length });
      }
    }
    releases.set(target.id, { entries, contents });
  }
  if (problems.length) throw new ConfigurationError(problems);
  return { releases, secrets: [...secrets] };
}

/** The values of a target's placeholders, or undefined when a declared variable has none. */
function variables(
  target: Target,
  o: ShipOptions,
  problems: Problem[],
  secrets: Set<string>,
): Record<string, string> | undefined {
  const values: Record<string, string> = {
    tenant: target.tenant.id,
    server: target.server.name,
    region: target.server.region,
    ring: target.tenant.ring,
  };
  let ok = true;
  for (const [name, v] of Object.entries(target.tenant.files!.variables)) {
    if ('value' in v) {
      values[name] = v.value;
      continue;
    }
    const value = o.env[v.env] ?? (o.checkOnly ? `\${${v.env}}` : undefined);
    if (value === undefined) {
      ok = false;
      problems.push({
        path: [...target.tenant.at, 'files', 'variables', name, 'env'],
        message: `$${v.env} is not set in this environment (file variable ${name})`,
        hint: `set ${v.env} for the deploy (a secret of the workflow), or give ${name} a value`,
      });
    } else {
      values[name] = value;
      if (v.secret && value) secrets.add(value);
    }
  }
  return ok ? values : undefined;
}

/** The file's bytes as shipped to one target: templated when asked (each distinct result hashed once). */
function templated(
  read: Read,
  template: boolean,
  values: Readonly<Record<string, string>>,
  hashes: Map<string, string>,
  problems: Problem[],
  at: Problem['path'],
  from: string,
): { bytes: Buffer; sha256: string } | undefined {
  if (!template || !read.names?.length) return read;
  const unknown = read.names.filter(
    (n) => !(n in values) && !(TARGET_PLACEHOLDERS as readonly string[]).includes(n),
  );
  if (unknown.length) {
    problems.push({
      path: at,
      message: `${from} uses {${unknown[0]}}, which is not a declared file variable`,
      hint: `declare it in files.variables, or write it as \${${unknown[0]}} for Compose`,
    });
    return undefined;
  }
  const key = `${read.sha256}\0${read.names.map((n) => values[n]).join('\0')}`;
  const bytes = Buffer.from(fill(read.bytes.toString('utf8'), values), 'utf8');
  let hash = hashes.get(key);
  if (!hash) hashes.set(key, (hash = sha256(bytes)));
  return { bytes, sha256: hash };
}

/** Reads files of the repository, each once, never following a path out of it. */
class RepoReader {
  private readonly root: string;
  private readonly cache = new Map<string, Array<[string, Read]>>();

  constructor(
    root: string,
    private readonly problems: Problem[],
  ) {
    this.root = realpathSync(root);
  }

  /** A file → [["", it]]; a directory → each file under it, by its path relative to it, sorted. */
  expand(from: string, at: Problem['path']): Array<[string, Read]> {
    const cached = this.cache.get(from);
    if (cached) return cached;
    const out = this.read(from, [...at, 'from']);
    this.cache.set(from, out);
    return out;
  }

  private read(from: string, at: Problem['path']): Array<[string, Read]> {
    const refuse = (message: string, hint: string) => (this.problems.push({ path: at, message, hint }), []);
    if (isAbsolute(from) || from.split('/').includes('..'))
      return refuse(
        `${from} is outside the repository`,
        'give a path inside the repository, relative to its root',
      );
    let real: string;
    try {
      real = realpathSync(join(this.root, from));
    } catch {
      return refuse(
        `${from} does not exist in the repository (${this.root})`,
        'give a path of a file or directory of the repository',
      );
    }
    if (!this.inside(real))
      return refuse(
        `${from} leads out of the repository (to ${real})`,
        'ship files of the repository itself, not links out of it',
      );
    const isDir = statSync(real).isDirectory();
    if (isDir !== from.endsWith('/'))
      return refuse(
        `${from} is a ${isDir ? 'directory' : 'file'} in the repository`,
        isDir ? `write "${from}/" (and a "to" ending in "/")` : `write it without the final "/"`,
      );
    if (!isDir) return [['', this.file(real)]];
    const out: Array<[string, Read]> = [];
    for (const rel of this.walk(real, '', at, from)) out.push([rel, this.file(join(real, rel))]);
    return out;
  }

  private *walk(dir: string, prefix: string, at: Problem['path'], from: string): Generator<string> {
    for (const d of readdirSync(join(dir, prefix), { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const rel = prefix ? `${prefix}/${d.name}` : d.name;
      const real = realpathSync(join(dir, rel));
      if (!this.inside(real)) {
        this.problems.push({
          path: at,
          message: `${from}${rel} leads out of the repository (to ${real})`,
          hint: 'remove the link, or copy the file into the repository',
        });
        continue;
      }
      if (!RELATIVE_FILE.re.test(rel)) {
        this.problems.push({
          path: at,
          message: `${from}${rel}: ${RELATIVE_FILE.valid} is needed on the server`,
          hint: 'rename it',
        });
        continue;
      }
      if (statSync(real).isDirectory()) yield* this.walk(dir, rel, at, from);
      else yield rel;
    }
  }

  private inside(real: string): boolean {
    const r = relative(this.root, real);
    return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
  }

  private file(real: string): Read {
    const bytes = readFileSync(real);
    const mode = statSync(real).mode & 0o111 ? 0o755 : 0o644;
    const text = !bytes.includes(0);
    return {
      bytes,
      sha256: sha256(bytes),
      mode,
      ...(text ? { names: placeholdersIn(bytes.toString('utf8')) } : {}),
    };
  }
}

/** The targets of a registry that ship files. */
export const shipsFiles = (registry: Registry) =>
  registry.servers.some((s) => s.tenants.some((t: Tenant) => t.files));
