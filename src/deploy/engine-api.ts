/**
 * The engine's API version for Compose v1, asked once per server and run and shared by its targets:
 * Compose v1 would otherwise ask the engine for it at every `up` (src/remote/compose.ts, pinApiVersion).
 */
import type { Tenant } from '../registry/model';
import { asksApiVersion, engineApiVersion, parseApiVersion } from '../remote/compose';
import type { TargetShell } from './shell';

/**
 * The version the engine reported, for a tenant whose compose command would ask it (`asksApiVersion`);
 * undefined for any other compose command, or when the engine did not say (Compose then asks the
 * engine itself, as always). An answer is kept for the run; no answer at all (a lost connection) is
 * asked again later.
 */
export async function composeApiVersion(shell: TargetShell, t: Tenant): Promise<string | undefined> {
  if (!asksApiVersion(t.compose.command)) return undefined;
  const ask = async () => {
    const r = await shell.exec(engineApiVersion(t));
    if (r.code === null) throw new Error('no answer');
    return r.code === 0 ? parseApiVersion(r.stdout) : undefined;
  };
  return shell.shared('engine-api-version', ask).catch(() => undefined);
}
