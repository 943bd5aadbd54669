/** What the CLI needs from the world; tests pass their own. */
import { readFile } from 'node:fs/promises';
import { ConfigurationError } from '../errors';

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readText: (path: string) => Promise<string>;
  env: Readonly<Record<string, string | undefined>>;
}

export function processIO(): CliIO {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readText: (p) => readFile(p, 'utf8'),
    env: process.env,
  };
}

/** Reads a user-named file; a missing or unreadable file is the user's mistake, said with the flag. */
export async function readUserFile(io: CliIO, path: string, flag: string): Promise<string> {
  try {
    return await io.readText(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : String((e as Error).message);
    throw new ConfigurationError([
      { path: [], source: flag, message: `cannot read ${JSON.stringify(path)}: ${why}` },
    ]);
  }
}
