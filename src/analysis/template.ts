/**
 * Placeholders in an analysis check's query, URL or command, and the one place their values are escaped
 * for the language they land in:
 *
 *   - `promql`: a PromQL query. The list placeholders ({tenants}, {servers}, {otherTenants}, {ring}) are
 *     RE2 alternations of the ids, each id regex-escaped, for `tenant=~"{tenants}"`; every value is then
 *     escaped for a double-quoted PromQL string (backslash and quote), where placeholders belong.
 *   - `url`: a URL. Each value is one URL component (encodeURIComponent), for `?tenants={tenants}`.
 *   - `shell`: a command run on a server. Each value becomes one single-quoted word (quote() of
 *     src/remote/shell.ts), so no value can change the command's shape.
 */
import { quote } from '../remote/shell';

export const ANALYSIS_PLACEHOLDERS = [
  'wave',
  'ring',
  'version',
  'previousVersion',
  'tenants',
  'servers',
  'otherTenants',
] as const;
export type AnalysisPlaceholder = (typeof ANALYSIS_PLACEHOLDERS)[number];

export type Language = 'promql' | 'url' | 'shell';

/** What a wave's analysis fills in: the lists are ids (tenant ids, server names, ring names). */
export interface TemplateValues {
  wave: number;
  rings: readonly string[];
  version: string;
  previousVersion: string;
  tenants: readonly string[];
  servers: readonly string[];
  otherTenants: readonly string[];
}

/**
 * An RE2 alternation matching exactly the ids. An empty list gives a regex that matches nothing (not
 * even the empty string), so `tenant=~"{otherTenants}"` selects no series once every tenant has moved.
 */
export function alternation(ids: readonly string[]): string {
  if (ids.length === 0) return '[^\\s\\S]';
  return [...new Set(ids)].map((id) => id.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&')).join('|');
}

/** The text of a double-quoted PromQL string (Go string escapes): backslash, quote and newlines. */
export function promqlString(value: string): string {
  return value.replace(/[\\"]/g, '\\$&').replaceAll('\n', '\\n').replaceAll('\r', '\\r');
}

function raw(values: TemplateValues, name: AnalysisPlaceholder, lang: Language): string {
  switch (name) {
    case 'wave':
      return String(values.wave);
    case 'version':
      return values.version;
    case 'previousVersion':
      return values.previousVersion;
    case 'ring':
      return lang === 'promql' ? alternation(values.rings) : values.rings.join(',');
    default: {
      const ids = values[name];
      return lang === 'promql' ? alternation(ids) : ids.join(',');
    }
  }
}

/** `{name}` occurrences that are not one of ANALYSIS_PLACEHOLDERS, for validation. */
export function unknownPlaceholders(template: string): string[] {
  return [...template.matchAll(/\{([^{}]*)\}/g)]
    .map((m) => m[1]!)
    .filter((n) => !(ANALYSIS_PLACEHOLDERS as readonly string[]).includes(n));
}

/** The template with each placeholder replaced by its value, escaped for `lang`. */
export function fill(template: string, values: TemplateValues, lang: Language): string {
  return template.replace(/\{([A-Za-z]+)\}/g, (whole, name: string) => {
    if (!(ANALYSIS_PLACEHOLDERS as readonly string[]).includes(name)) return whole;
    const v = raw(values, name as AnalysisPlaceholder, lang);
    if (lang === 'promql') return promqlString(v);
    if (lang === 'url') return encodeURIComponent(v);
    return quote(v);
  });
}
