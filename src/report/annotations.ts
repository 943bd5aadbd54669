/**
 * One annotation per failed or rolled-back target, placed on the tenant's entry in the registry file, so
 * the run page and the file view point at the line to look at (pure: the caller reads the file).
 * GitHub shows at most 10 error annotations a step, so past `max` one more says how many were left out.
 */
import type { FleetReport } from '../deploy/fleet';
import { TextLocator } from '../registry/locate';
import { reason } from './render';

export interface Annotation {
  message: string;
  title: string;
  file?: string;
  startLine?: number;
  startColumn?: number;
}

export const MAX_ANNOTATIONS = 10;

/** Where each `server/tenant` is listed in the registry text: servers[i].tenants[j]. */
function tenantPaths(text: string): Map<string, Array<string | number>> {
  const paths = new Map<string, Array<string | number>>();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return paths;
  }
  const servers = (data as { servers?: unknown })?.servers;
  if (!Array.isArray(servers)) return paths;
  servers.forEach((server: { name?: unknown; tenants?: unknown }, i) => {
    if (typeof server?.name !== 'string' || !Array.isArray(server.tenants)) return;
    server.tenants.forEach((tenant: { id?: unknown }, j) => {
      if (typeof tenant?.id === 'string')
        paths.set(`${server.name}/${tenant.id}`, ['servers', i, 'tenants', j]);
    });
  });
  return paths;
}

export function failureAnnotations(
  report: FleetReport,
  registry?: { path: string; text: string },
  max = MAX_ANNOTATIONS,
): Annotation[] {
  const failed = report.targets.filter((r) => r.outcome === 'failed' || r.outcome === 'rolled-back');
  const paths = registry ? tenantPaths(registry.text) : new Map<string, Array<string | number>>();
  const locator = registry ? new TextLocator(registry.text) : undefined;
  const shown = failed.length > max ? failed.slice(0, max - 1) : failed;
  const out: Annotation[] = shown.map((r) => {
    const path = paths.get(r.id);
    const at = path && locator?.locate(path);
    return {
      title: `fleet-deploy: ${r.id} ${r.outcome}`,
      message: `${r.id}: ${r.outcome}: ${reason(r)}`,
      ...(at && registry ? { file: registry.path, startLine: at.line, startColumn: at.column } : {}),
    };
  });
  if (shown.length < failed.length)
    out.push({
      title: 'fleet-deploy: more failures',
      message: `…and ${failed.length - shown.length} more failed or rolled-back targets: see the job summary and the report artifact`,
    });
  return out;
}
