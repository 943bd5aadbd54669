/**
 * The values `init` wrote without knowing them (a tenant's health port, the stand-in image), listed in the
 * registry's `placeholders` (JSON path → the value written). `validate` flags each that still has that
 * value: once edited it is the person's own, and the entry may stay or go. Pure.
 */
import type { Problem } from '../errors';
import { TextLocator } from './locate';

/** `servers[0].tenants[1].health.port` → ['servers', 0, 'tenants', 1, 'health', 'port'] */
export function parsePath(text: string): Array<string | number> {
  return [...text.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));
}

function valueAt(root: unknown, path: ReadonlyArray<string | number>): unknown {
  let at = root;
  for (const key of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string | number, unknown>)[key];
  }
  return at;
}

/** A problem per placeholder still at the value init wrote, placed on its line. */
export function placeholderProblems(text: string, source: string): Problem[] {
  const raw = JSON.parse(text) as { placeholders?: Record<string, unknown> };
  const locator = new TextLocator(text);
  const out: Problem[] = [];
  for (const [where, written] of Object.entries(raw.placeholders ?? {})) {
    const path = parsePath(where);
    const now = valueAt(raw, path);
    if (JSON.stringify(now) !== JSON.stringify(written)) continue;
    out.push({
      path,
      source,
      ...locator.locate(path),
      message: `${JSON.stringify(now)} is a placeholder init wrote: it could not know this value`,
      hint: /health\.port$/.test(where)
        ? "set the port the tenant's health check answers on, on the server (127.0.0.1)"
        : /repository$/.test(where)
          ? "set your image's repository (or run init with --discover to find it in the tenant's .env)"
          : 'set the real value',
    });
  }
  return out;
}
