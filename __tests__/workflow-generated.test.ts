/**
 * The reusable workflows are generated from one description (.ci/workflows.mjs): one wave body, written
 * once, for WAVES waves. This is the drift check CI runs: the committed files are what the generator
 * writes, and the matrix mode has at least 10 waves, each job the same body but for its wave number.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const generator = '../.ci/workflows.mjs';
const { generated, WAVES } = (await import(generator)) as {
  generated: () => Promise<Record<string, string>>;
  WAVES: number;
};
const files = await generated();

test.each(Object.keys(files))(
  '%s is what .ci/workflows.mjs writes (run `node .ci/workflows.mjs`)',
  (file) => {
    expect(readFileSync(file, 'utf8')).toBe(files[file]);
  },
);

test('at least 10 waves, with a gate between each two and the summary after all', () => {
  expect(WAVES).toBeGreaterThanOrEqual(10);
  const jobs = parse(files['.github/workflows/deploy.yml']!).jobs;
  const waves = Object.keys(jobs).filter((j) => /^wave-\d+$/.test(j));
  const gates = Object.keys(jobs).filter((j) => /^gate-\d+$/.test(j));
  expect(waves).toHaveLength(WAVES);
  expect(gates).toHaveLength(WAVES - 1);
  expect(jobs.summary.needs).toEqual(expect.arrayContaining([...waves, ...gates, 'plan', 'fleet']));
  for (let n = 2; n <= WAVES; n++)
    expect(jobs[`wave-${n}`].needs).toEqual(['plan', `gate-${n - 1}`, `approve-${n - 1}`]);
  // An inconclusive analysis under "pause": the approve job waits for the environment's reviewers.
  for (let n = 1; n < WAVES; n++)
    expect(jobs[`approve-${n}`]).toMatchObject({
      needs: [`gate-${n}`],
      if: `\${{ !cancelled() && needs.gate-${n}.outputs.pause == 'true' }}`,
      environment: '${{ inputs.analysis-approval-environment }}',
    });
});

test('every wave job is one body: equal once its wave number is taken out', () => {
  const jobs = parse(files['.github/workflows/deploy.yml']!).jobs;
  const body = (n: number) =>
    JSON.stringify(jobs[`wave-${n}`])
      .replaceAll(`[${n - 1}]`, '[N-1]')
      .replace(/wave-\d+|gate-\d+|approve-\d+|wave \d+|\.w\d+-|>= \d+/g, (m) => m.replace(/\d+/, 'N'));
  for (let n = 3; n <= WAVES; n++) expect(body(n)).toBe(body(2));
  const stopped = jobs.summary.steps.at(-1).with.stopped as string;
  expect(stopped.match(/needs\.gate-\d+\.outputs\.reason/g)).toHaveLength(WAVES - 1);
});
