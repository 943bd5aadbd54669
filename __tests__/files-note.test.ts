/**
 * The files note a switch leaves in its lock (issue 25), read back by a take-over: server text, so every
 * hash, mode and path is checked, and anything else refuses the whole note (nothing is restored from it).
 */
import { parseFilesNote } from '../src/deploy/files';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const good = {
  files: { 'config/policy/base.rego': B, 'config/policy/extra.rego': A },
  fileModes: { 'config/policy/extra.rego': '600' },
  fromFiles: { 'config/policy/base.rego': A },
  fromFileModes: {},
  remove: ['config/policy/extra.rego'],
  fromList: [`${A} 644 config/policy/base.rego`],
};

describe('parseFilesNote', () => {
  test('a note as install files writes it is read back whole', () => {
    expect(parseFilesNote(JSON.stringify(good))).toEqual(good);
    expect(parseFilesNote(JSON.stringify({ ...good, fromList: null }))?.fromList).toBeNull();
  });

  test.each([
    ['not JSON', 'files=1'],
    ['a hash that is not a sha256', JSON.stringify({ ...good, fromFiles: { 'a.conf': 'abc' } })],
    ['a path out of the tenant directory', JSON.stringify({ ...good, fromFiles: { '../etc/passwd': A } })],
    ['an absolute path', JSON.stringify({ ...good, remove: ['/etc/passwd'] })],
    ['a path with a quote', JSON.stringify({ ...good, fromFiles: { "a'$(reboot)": A } })],
    [
      'a mode that is not octal',
      JSON.stringify({ ...good, fromFileModes: { 'config/policy/base.rego': '7777; x' } }),
    ],
    [
      'a mode of a file it does not have',
      JSON.stringify({ ...good, fromFileModes: { 'other.conf': '600' } }),
    ],
    ['a path both restored and removed', JSON.stringify({ ...good, remove: ['config/policy/base.rego'] })],
    ['a list line that is not one', JSON.stringify({ ...good, fromList: [`${A} 644 ../x`] })],
    ['a missing field', JSON.stringify({ ...good, remove: undefined })],
  ])('refused: %s', (_, text) => expect(parseFilesNote(text)).toBeUndefined());
});
