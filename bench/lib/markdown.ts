/** What the benchmarks write into docs/PERFORMANCE.md: Markdown as prettier writes it, between markers. */
import { readFileSync, writeFileSync } from 'node:fs';

/** Markdown as prettier writes it (with the config of `like`), so `prettier --check` passes on it. */
export async function formatMarkdown(md: string, like = 'docs/PERFORMANCE.md'): Promise<string> {
  try {
    const prettier = await import('prettier');
    const config = await prettier.resolveConfig(like);
    return await prettier.format(md, { ...config, parser: 'markdown' });
  } catch {
    return md; // prettier is a dev dependency; unformatted Markdown reads the same
  }
}

/**
 * `text` with the part from `begin` to `end` (both markers included) replaced by `section`; without
 * the markers, `fallback` (the section by default) appended.
 */
export function replaceSection(
  text: string,
  begin: string,
  end: string,
  section: string,
  fallback = section,
) {
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  return a >= 0 && b > a
    ? `${text.slice(0, a)}${section}${text.slice(b + end.length)}`
    : `${text.trimEnd()}\n\n${fallback}\n`;
}

/** Rewrites the section of `file` between the markers (see replaceSection). */
export function writeSection(file: string, begin: string, end: string, section: string, fallback = section) {
  writeFileSync(file, replaceSection(readFileSync(file, 'utf8'), begin, end, section, fallback));
}
