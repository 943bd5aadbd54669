/**
 * Help text fitted to the terminal: each line longer than the width is wrapped at spaces, its continuation
 * lines indented under where its text starts — an option's description column, a synopsis's first
 * argument, a numbered heading's text, a paragraph's own indent (a hanging indent, as the progress output
 * does).
 */

/** Where a long line's continuation lines start. */
function hangingIndent(line: string, width: number): number {
  const option = /^(\s*(?:-\w, )?--?[\w-]+(?: \S+)?\s{2,})\S/.exec(line);
  const synopsis = /^((?:npx )?fleet-deploy [\w-]+ )/.exec(line);
  const numbered = /^(\s*\d{1,3}\. )\S/.exec(line);
  const lead = /^\s*/.exec(line)![0].length;
  const indent = option
    ? option[1]!.length
    : synopsis
      ? synopsis[1]!.length
      : numbered
        ? numbered[1]!.length
        : lead;
  return indent <= width / 2 ? indent : lead + 4;
}

function wrapLine(line: string, width: number): string[] {
  if ([...line].length <= width) return [line];
  const indent = hangingIndent(line, width);
  const out: string[] = [];
  let rest = line;
  let pad = '';
  while ([...rest].length + pad.length > width) {
    const room = width - pad.length;
    let cut = rest.lastIndexOf(' ', room);
    if (cut <= indent - pad.length || cut <= 0) cut = rest.indexOf(' ', room); // a word longer than the room
    if (cut <= 0) break;
    out.push(pad + rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut + 1).trimStart();
    pad = ' '.repeat(indent);
  }
  out.push(pad + rest);
  return out;
}

/** `text` with every line fitted to `width` columns (at least 40). */
export function wrapText(text: string, width = 80): string {
  const w = Math.max(40, width);
  return text
    .split('\n')
    .flatMap((l) => wrapLine(l, w))
    .join('\n');
}
