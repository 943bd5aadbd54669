/**
 * Colour for people, never for logs: through `util.styleText`, on when FORCE_COLOR asks for it (any value
 * but 0), off with NO_COLOR (https://no-color.org), else only when the output is a terminal.
 */
import { styleText } from 'node:util';

export type Style = Parameters<typeof styleText>[0];
export type Paint = (text: string, style: Style) => string;

export function colorWanted(env: Readonly<Record<string, string | undefined>>, tty: boolean): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR) return false;
  return tty;
}

/** `paint(text, style)`, or the text as it is when colour is off. */
export function painter(on: boolean): Paint {
  // validateStream: false — the choice is made above, for the stream the text goes to (Node 22+ would
  // otherwise check stdout even for text written to stderr).
  return on ? (text, style) => styleText(style, text, { validateStream: false }) : (text) => text;
}
