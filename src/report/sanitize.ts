/**
 * Text from a server (remote stderr, hook output, lock owners, history fields) made safe to print, pure.
 * Every path from such text to a terminal or a GitHub Actions log goes through here, because:
 * - terminal control: escape sequences (CSI, OSC, DCS …), C0/C1 control characters and a bare carriage
 *   return can clear the screen, retitle the window, hide or overwrite lines; Unicode bidirectional
 *   overrides make text read differently from what it is. All are removed (newlines and tabs kept where
 *   the text has lines).
 * - workflow commands: the Actions runner executes any log line that starts with "::" once leading
 *   whitespace is trimmed (`::warning …`, `::add-mask::…`, `::stop-commands::…`), and the older form
 *   `##[command]` anywhere in a line. Such a line gets a zero-width space (U+200B, which the runner does
 *   not trim) in front, and `##[` a zero-width space inside, so the text reads the same and runs nothing.
 */

const ZWSP = '\u200b';

/* eslint-disable no-control-regex -- matching control characters is the point */
const ESCAPES = new RegExp(
  [
    '\\x1b\\[[0-?]*[ -/]*[@-~]', // CSI: colours, cursor moves, erase screen
    '\\x9b[0-?]*[ -/]*[@-~]', // the same, as one 8-bit C1 character
    // OSC (window title, hyperlinks, clipboard), DCS, SOS, PM, APC: a string up to its terminator (the
    // string stops at any introducer, so many unterminated ones cost one pass, not one pass each)
    '(?:\\x1b[\\]PX^_]|[\\x90\\x98\\x9d\\x9e\\x9f])[^\\x07\\x1b\\x90\\x98\\x9c-\\x9f]*(?:\\x07|\\x1b\\\\|\\x9c)',
    '\\x1b[ -/]*[0-~]', // every other escape sequence (ESC c resets the terminal)
  ].join('|'),
  'g',
);
/** C0 controls but tab and newline, DEL, C1 controls, and the Unicode bidi marks, embeddings and overrides. */
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/* eslint-enable no-control-regex */

/** A line the runner would read as a workflow command: "::" after any leading whitespace. */
const COMMAND_LINE = /^([^\S\n]*::)/gm;

/**
 * Server text with its lines kept: escape sequences and control characters removed (but "\n" and "\t"),
 * and lines that would be workflow commands neutralised.
 */
export function sanitize(text: string): string {
  return text
    .replace(/\r\n?/g, '\n') // the runner also splits lines at a bare "\r"
    .replace(ESCAPES, '')
    .replace(CONTROLS, '')
    .replace(COMMAND_LINE, `${ZWSP}$1`)
    .replaceAll('##[', `#${ZWSP}#[`);
}

/** Server text for one line (a table cell, a status line): as sanitize, with line breaks and tabs as spaces. */
export function sanitizeLine(text: string): string {
  return sanitize(text).replace(/[\n\t]/g, ' ');
}

/** C1 controls and the Unicode bidi marks, embeddings and overrides: what JSON leaves raw but a terminal obeys. */
const RAW_IN_JSON = /[\x80-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A value as JSON for `--format json` and the actions' JSON outputs, with every string cleaned of C1
 * controls and bidi overrides (JSON escapes C0 controls, ESC included, but prints these raw, so a terminal
 * or a reader would obey them). Everything else is kept as the server sent it.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    (_, v: unknown) => (typeof v === 'string' ? v.replace(RAW_IN_JSON, '') : v),
    indent,
  );
}

/**
 * Server text as a Markdown code span, so none of it is live Markdown or HTML (a link, an image, bold, an
 * @mention, a tag): cleaned as `sanitizeLine`, on one line, fenced by one backtick more than its longest
 * run of backticks (padded with a space when it starts or ends with one). In a table (`inTable`) its pipes
 * are escaped, which GitHub's tables read inside code spans too. Empty text: an empty string.
 */
export function codeSpan(text: string, inTable = true): string {
  const line = sanitizeLine(text).trim();
  if (!line) return '';
  const longest = [...line.matchAll(/`+/g)].reduce((max, m) => Math.max(max, m[0].length), 0);
  const fence = '`'.repeat(longest + 1);
  const pad = line.startsWith('`') || line.endsWith('`') ? ' ' : '';
  // A pipe after an even run of backslashes (none included) would end the cell: give it one more.
  const body = inTable
    ? line.replace(/(\\*)\|/g, (_, bs: string) => `${bs}${bs.length % 2 ? '' : '\\'}|`)
    : line;
  return `${fence}${pad}${body}${pad}${fence}`;
}

/** The size of text in UTF-8 bytes (what GitHub's step-summary limit counts), without encoding it. */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
