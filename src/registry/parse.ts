/** Text → Registry, or a ConfigurationError listing every problem with its line and column. */
import { ConfigurationError, formatPath, show, type Problem } from '../errors';
import { issueProblems } from './issues';
import { nestingProblem, syntaxProblems, TextLocator } from './locate';
import type { Registry } from './model';
import { resolveRegistry, type SalvagedFile } from './resolve';
import { registrySchema, serverSchema, tenantSchema } from './schema';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

type Schema = { safeParse(v: unknown): { success: boolean; error?: { issues: readonly Issue[] } } };
type Issue = { code: string; path: readonly PropertyKey[]; keys?: readonly string[] };

/** Deletes the value at `path` inside `root`; false when there is nothing deletable (the root itself). */
function deleteAt(root: Record<string, unknown>, path: readonly PropertyKey[]): boolean {
  if (path.length === 0) return false;
  let node: unknown = root;
  for (const key of path.slice(0, -1))
    node = isObject(node) || Array.isArray(node) ? node[key as never] : undefined;
  if (!isObject(node) && !Array.isArray(node)) return false;
  const last = path.at(-1)!;
  if (Array.isArray(node)) node.splice(Number(last), 1);
  else delete node[last as string];
  return true;
}

/**
 * What is valid of a block of defaults: each field the schema rejects (a typo such as "helth", a bad
 * value) is removed and the rest kept, so one mistake in `defaults` is reported once and every tenant is
 * still checked with the defaults that are valid (instead of a "no path" for each). Undefined when the
 * block as a whole is wrong (not an object).
 */
function validPart<T>(schema: Schema, value: unknown): T | undefined {
  if (!isObject(value)) return undefined;
  const copy = structuredClone(value);
  // One issue a round: removing a list item shifts the paths of the others.
  for (let round = 0; round < 100; round++) {
    const r = schema.safeParse(copy);
    if (r.success) return copy as T;
    const issue = r.error?.issues[0];
    if (!issue) return undefined;
    const path =
      issue.code === 'unrecognized_keys' && issue.keys?.length ? [...issue.path, issue.keys[0]!] : issue.path;
    if (!deleteAt(copy, path)) return undefined;
  }
  return undefined;
}

/**
 * Keeps what passed the schema, entry by entry, so the checks across entries still run and every problem
 * is reported at once (see SalvagedFile). A server whose own fields are invalid stays, with stand-ins for
 * those fields, so its tenants are still checked; the stand-ins are unique and never collide.
 */
function salvage(raw: unknown): SalvagedFile | undefined {
  if (!isObject(raw) || !Array.isArray(raw.servers)) return undefined;
  const part = <T>(schema: { safeParse(v: unknown): { success: boolean } }, v: unknown) =>
    schema.safeParse(v).success ? (v as T) : undefined;
  type SalvagedServer = NonNullable<SalvagedFile['servers'][number]>;
  const top = registrySchema.shape;
  return {
    rings: part(top.rings, raw.rings),
    rollout: part(top.rollout, raw.rollout),
    defaults: validPart(top.defaults, raw.defaults),
    servers: raw.servers.map((s, si) => {
      if (!isObject(s) || !Array.isArray(s.tenants)) return undefined;
      const tenants = s.tenants.map((t) => part<SalvagedServer['tenants'][number]>(tenantSchema, t));
      const server: Record<string, unknown> = { ...s, tenants: [] };
      const check = serverSchema.safeParse(server);
      if (!check.success) {
        for (const issue of check.error.issues) {
          const keys =
            issue.code === 'unrecognized_keys' && issue.path.length === 0 ? issue.keys : [issue.path[0]];
          for (const key of keys) {
            if (key === 'tenantDefaults') {
              server.tenantDefaults = validPart(serverSchema.shape.tenantDefaults, s.tenantDefaults);
              if (server.tenantDefaults === undefined) return undefined; // its tenants cannot be resolved
            } else if (key === 'name') server.name = `invalid-${si}`;
            else if (key === 'host' || key === 'port')
              [server.host, server.port] = [`invalid-${si}.invalid`, 22];
            else if (key === 'region') server.region = 'invalid';
            else delete server[key as string];
          }
        }
        if (!serverSchema.safeParse(server).success) return undefined;
      }
      return { ...(server as SalvagedServer), tenants };
    }),
  };
}

/**
 * Duplicate server names and tenant ids, found on the raw input so they are reported even where other
 * fields of the same entry are invalid.
 */
function duplicateProblems(raw: unknown): Problem[] {
  if (!isObject(raw) || !Array.isArray(raw.servers)) return [];
  const problems: Problem[] = [];
  const servers = new Map<string, number>();
  const tenants = new Map<string, Array<string | number>>();
  raw.servers.forEach((s, si) => {
    if (!isObject(s)) return;
    if (typeof s.name === 'string') {
      const first = servers.get(s.name);
      if (first !== undefined)
        problems.push({
          path: ['servers', si, 'name'],
          message: `server name ${show(s.name)} is already used by servers[${first}]`,
          hint: 'server names must be unique',
        });
      else servers.set(s.name, si);
    }
    if (!Array.isArray(s.tenants)) return;
    s.tenants.forEach((t, ti) => {
      if (!isObject(t) || typeof t.id !== 'string') return;
      const first = tenants.get(t.id);
      if (first)
        problems.push({
          path: ['servers', si, 'tenants', ti, 'id'],
          message: `tenant id ${show(t.id)} is already used by ${formatPath(first)}`,
          hint: 'tenant ids must be unique across the registry',
        });
      else tenants.set(t.id, ['servers', si, 'tenants', ti]);
    });
  });
  return problems;
}

export function parseRegistry(text: string, source: string): Registry {
  const tooDeep = nestingProblem(text, source);
  if (tooDeep) throw new ConfigurationError([tooDeep]);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigurationError(syntaxProblems(text, source));
  }
  const parsed = registrySchema.safeParse(raw, { reportInput: true });
  const problems: Problem[] = parsed.success ? [] : issueProblems(registrySchema, parsed.error.issues);
  problems.push(...duplicateProblems(raw));
  const file = parsed.success ? parsed.data : salvage(raw);
  let registry: Registry | undefined;
  if (file) {
    const resolved = resolveRegistry(file, source);
    problems.push(...resolved.problems);
    registry = resolved.registry;
  }
  if (problems.length > 0 || !registry) {
    const locator = new TextLocator(text);
    const located = problems.map((p) => ({ ...p, source, ...locator.locate(p.path, p.atKey) }));
    located.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    throw new ConfigurationError(located);
  }
  return registry;
}
