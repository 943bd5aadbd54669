import { wrapText } from '../src/cli/wrap';

test('a numbered heading wider than the terminal wraps under its text, not under its number', () => {
  const heading =
    '4. The same rollout with a failure budget of 30% (1 failure in the 4 targets so far is 25%)';
  const lines = wrapText(heading, 80).split('\n');
  expect(lines).toEqual([
    '4. The same rollout with a failure budget of 30% (1 failure in the 4 targets so',
    '   far is 25%)',
  ]);
  expect(lines.every((l) => [...l].length <= 80)).toBe(true);
});

test('a line that fits is left as it is', () => {
  expect(wrapText('2. Deploy v1 to every tenant', 80)).toBe('2. Deploy v1 to every tenant');
});
