/**
 * Finds where a JSON path sits in the registry's text (line and column), and turns JSON syntax errors into
 * problems. Only runs when something is wrong, so the happy path pays nothing for it.
 */
import {
  findNodeAtLocation,
  parse,
  parseTree,
  printParseErrorCode,
  type Node,
  type ParseError,
} from 'jsonc-parser';
import type { Problem } from '../errors';

const STRICT_JSON = { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false };

export class TextLocator {
  private readonly lineStarts: number[] = [0];
  private root: Node | undefined;

  constructor(private readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  position(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.lineStarts[lo]! + 1 };
  }

  /**
   * The position of the value at `path`; for a key that does not exist, of its nearest existing parent.
   * With `key`, the position of the property name rather than its value (for unknown keys).
   */
  locate(path: ReadonlyArray<string | number>, key = false): { line: number; column: number } | undefined {
    this.root ??= parseTree(this.text, [], STRICT_JSON);
    if (!this.root) return undefined;
    for (let n = path.length; n >= 0; n--) {
      const node = findNodeAtLocation(this.root, path.slice(0, n) as (string | number)[]);
      if (!node) continue;
      const target = key && n === path.length && node.parent?.type === 'property' ? node.parent : node;
      return this.position(target.offset);
    }
    return undefined;
  }
}

const SYNTAX_WORDS: Record<string, string> = {
  InvalidSymbol: 'unexpected character',
  InvalidNumberFormat: 'invalid number',
  PropertyNameExpected: 'expected a property name in double quotes',
  ValueExpected: 'expected a value',
  ColonExpected: 'expected ":"',
  CommaExpected: 'expected ","',
  CloseBraceExpected: 'expected "}"',
  CloseBracketExpected: 'expected "]"',
  EndOfFileExpected: 'expected the end of the file',
  InvalidCommentToken: 'comments are not allowed in JSON',
  UnexpectedEndOfComment: 'unterminated comment',
  UnexpectedEndOfString: 'unterminated string',
  UnexpectedEndOfNumber: 'unterminated number',
  InvalidUnicode: 'invalid unicode escape',
  InvalidEscapeCharacter: 'invalid escape character',
  InvalidCharacter: 'invalid character in a string',
};

/** Every JSON syntax error in `text`, with its position. Empty when the text is valid JSON. */
export function syntaxProblems(text: string, source: string): Problem[] {
  const errors: ParseError[] = [];
  parse(text, errors, STRICT_JSON);
  const locator = new TextLocator(text);
  return errors.map((e) => {
    const code = printParseErrorCode(e.error);
    const near = text.slice(e.offset, e.offset + Math.max(e.length, 1)).slice(0, 20);
    return {
      path: [],
      source,
      ...locator.position(e.offset),
      message: `invalid JSON: ${SYNTAX_WORDS[code] ?? code}${near.trim() ? ` near ${JSON.stringify(near)}` : ''}`,
      hint:
        code === 'ValueExpected' || code === 'PropertyNameExpected'
          ? 'JSON allows no trailing commas'
          : undefined,
    } satisfies Problem;
  });
}

/**
 * How deep a registry may nest. A real one nests about eight levels; the parsers after JSON.parse (the
 * schema, the locator) recurse once per level, so a file nested thousands deep would overflow the stack.
 */
export const MAX_NESTING = 64;

/**
 * A problem when `text` nests arrays and objects deeper than MAX_NESTING, placed at the first bracket that
 * goes too deep and naming the deepest level. One pass over the text, without recursion (it runs before
 * any parser, on valid JSON or not).
 */
export function nestingProblem(text: string, source: string): Problem | undefined {
  let depth = 0;
  let deepest = 0;
  let first = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      deepest = Math.max(deepest, ++depth);
      if (depth > MAX_NESTING && first < 0) first = i;
    } else if (c === ']' || c === '}') depth--;
  }
  if (first < 0) return undefined;
  return {
    path: [],
    source,
    ...new TextLocator(text).position(first),
    message: `the JSON nests ${deepest} levels deep (arrays and objects inside each other); at most ${MAX_NESTING} are read`,
    hint: 'a registry nests about 8 levels: this file is not a registry, or was generated wrongly',
  };
}
