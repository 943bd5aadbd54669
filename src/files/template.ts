/**
 * Templating of shipped files: {tenant}, {server}, {region}, {ring} and {NAME} of the tenant's declared
 * file variables. A `${…}` (Compose's own interpolation) is never touched, nor a `{word}` that is neither.
 */

/** The placeholders in `text`, each once: `{tenant}`-like names and `{NAME}` variables (not `${…}`). */
export function placeholdersIn(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/(?<!\$)\{([a-z]+|[A-Z][A-Z0-9_]*)\}/g)) names.add(m[1]!);
  return [...names];
}

export const TARGET_PLACEHOLDERS = ['tenant', 'server', 'region', 'ring'] as const;

/** `text` with each of `names` replaced by its value in `values` (names absent from `values` are kept). */
export function fill(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(/(?<!\$)\{([a-z]+|[A-Z][A-Z0-9_]*)\}/g, (whole, name: string) =>
    Object.hasOwn(values, name) ? values[name]! : whole,
  );
}
