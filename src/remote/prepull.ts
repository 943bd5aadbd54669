/**
 * The pre-pull: a later wave's images pulled onto a server while the wave before it gates and soaks. It
 * holds no lock and changes nothing that runs (no .env, no container): it only puts layers into the
 * engine's store. A filesystem with less than `minFreeMb` free is left alone (`@@low-disk FREE`).
 */
import type { Tenant } from '../registry/model';
import { engineOf } from './compose';
import { pullAll, type PullLogin } from './images';
import { named, Script, sh } from './shell';
import { enter } from './tenant-dir';

export function prePullImages(
  t: Tenant,
  refs: readonly string[],
  minFreeMb: number,
  login?: PullLogin,
): Script {
  const engine = engineOf(t.compose.command);
  const free = sh`free=$(df -Pk . | awk 'NR==2 {print int($4 / 1024)}')`;
  const enoughDisk = sh`${free} && { [ "$free" -ge ${minFreeMb} ] || { echo "@@low-disk $free"; exit 0; }; }`;
  return named(
    'prePull',
    sh`${enter(t)} && ${enoughDisk} && ${pullAll(engine, refs, login)} && echo '@@prepulled'`,
  );
}

/** What the pre-pull said: pulled, or the MiB free on a disk too full for it. */
export function parsePrePull(stdout: string): { pulled: true } | { lowDiskMb: number } | undefined {
  const low = /^@@low-disk (\d+)$/m.exec(stdout);
  if (low) return { lowDiskMb: Number(low[1]) };
  return /^@@prepulled$/m.test(stdout) ? { pulled: true } : undefined;
}
