/**
 * How the person runs this command, so every hint it prints runs as printed: `fleet-deploy` when that
 * name on their PATH is this very program, else `npx fleet-deploy` (a clone, where npx runs the
 * project's own bin; a repository with the package installed; or a run through npm/npx, whose PATH is
 * npm's and not the person's shell's).
 */
import { realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const NAME = 'fleet-deploy';

const real = (path: string): string | undefined => {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
};

export function invocation(
  env: Readonly<Record<string, string | undefined>>,
  script: string | undefined = process.argv[1],
): string {
  if (env.npm_command || !script) return `npx ${NAME}`;
  const self = real(script);
  const onPath = (env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => real(join(dir, NAME)))
    .find((p) => p !== undefined);
  return self !== undefined && onPath === self ? NAME : `npx ${NAME}`;
}
