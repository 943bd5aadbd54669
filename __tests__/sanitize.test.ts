/** Server text made safe for terminals and Actions logs (src/report/sanitize.ts), pure. */
import { sanitize, sanitizeLine } from '../src/report/sanitize';

const Z = '\u200b';

test('escape sequences go: colours, clear screen, cursor moves, window title, hyperlinks, terminal reset', () => {
  expect(sanitize('\x1b[31mred\x1b[0m \x1b[2J\x1b[H\x1b[1;1Hhome')).toBe('red home');
  expect(sanitize('a\x1b]0;pwned title\x07b\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\c')).toBe(
    'ablinkc',
  );
  expect(sanitize('x\x1bcy\x1b7z\x1b(0w')).toBe('xyzw');
  expect(sanitize('d\x1bPq#0;2;0;0;0\x1b\\e')).toBe('de');
  expect(sanitize('8-bit \x9b2J CSI, \x9d0;t\x9c OSC')).toBe('8-bit  CSI,  OSC');
  // an unterminated string: only the introducer goes, the text stays readable
  expect(sanitize('\x1b]0;no end')).toBe('0;no end');
});

test('control characters go, but newlines and tabs of a multi-line text stay; "\\r" is a line break', () => {
  expect(sanitize('a\x00b\x07c\x08d\x7fe\x85f\tg\nh')).toBe('abcdef\tg\nh');
  expect(sanitize('progress 10%\rprogress 100%\r\nok')).toBe('progress 10%\nprogress 100%\nok');
  expect(sanitizeLine('one\ntwo\tthree')).toBe('one two three');
});

test('Unicode bidirectional controls go (text reads as it is)', () => {
  expect(sanitize('access\u202e\u2066level\u2069\u202c: user\u200f\u061c')).toBe('accesslevel: user');
});

test('lines the Actions runner would run as workflow commands are neutralised', () => {
  expect(sanitize('ok\n::warning file=x::forged\n  ::set-output name=a::b\n\t::add-mask::c')).toBe(
    `ok\n${Z}::warning file=x::forged\n${Z}  ::set-output name=a::b\n${Z}\t::add-mask::c`,
  );
  expect(sanitize('\n\n::error::x')).toBe(`\n\n${Z}::error::x`);
  // a "\r" (a line break for the runner) or an escape sequence cannot smuggle one past
  expect(sanitize('fine\r::stop-commands::tok')).toBe(`fine\n${Z}::stop-commands::tok`);
  expect(sanitize('\x1b[2K::endgroup::')).toBe(`${Z}::endgroup::`);
  expect(sanitizeLine('a\n::notice::b')).toBe(`a ${Z}::notice::b`);
  // the older form works anywhere in a line
  expect(sanitize('text ##[error]forged')).toBe(`text #${Z}#[error]forged`);
  // "::" inside a line is not a command and stays as it is
  expect(sanitize('std::vector and a::b')).toBe('std::vector and a::b');
});

test('hostile input costs one pass: thousands of unterminated introducers', () => {
  const text = '\x9d'.repeat(50_000) + '\x1b['.repeat(50_000) + '\x1bP'.repeat(50_000);
  expect(sanitize(text)).toBe('');
});
