/** Reads the deploy reports that matrix jobs uploaded (JSON files under a directory, any depth). */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigurationError } from '../errors';
import type { FleetReport } from '../deploy/fleet';

export async function readReports(dir: string, source: string): Promise<FleetReport[]> {
  let files: string[];
  try {
    files = (await readdir(dir, { recursive: true }))
      .map(String)
      .filter((f) => f.endsWith('.json'))
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ConfigurationError([
      { path: [], source, message: `cannot read ${JSON.stringify(dir)}: ${(e as Error).message}` },
    ]);
  }
  const reports: FleetReport[] = [];
  for (const f of files) {
    const data = JSON.parse(await readFile(join(dir, f), 'utf8')) as FleetReport;
    if (Array.isArray(data?.targets) && data.totals) reports.push(data);
  }
  return reports;
}
