/**
 * Remote commands are data, and `quote` is the one function that turns a value into shell text.
 *
 * Scripts are written with the `sh` tagged template: its literal parts are constant shell written in this
 * repository; every interpolated value is quoted (an array becomes several quoted words), except another
 * Script, which is already shell. So no value can change the shape of a command, whatever it holds.
 *
 *   sh`cd -- ${tenant.path} && ${compose} up -d ${services}`
 */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX single-quoting: safe for any string without NUL (which no shell argument can hold). */
export function quote(value: string): string {
  if (value.includes('\0')) throw new Error('a shell argument cannot contain a NUL byte');
  if (value !== '' && SAFE.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export class Script {
  constructor(
    readonly text: string,
    /** The remote verb whose builder made it (`prepare`, `update`, …): what logs and test doubles go by. */
    readonly verb?: string,
  ) {}
  toString(): string {
    return this.text;
  }
}

/** The same script, tagged with the verb of the builder that made it. */
export function named(verb: string, script: Script): Script {
  return new Script(script.text, verb);
}

export type Value = string | number | Script | readonly (string | Script)[];

function piece(v: Value): string {
  if (v instanceof Script) return v.text;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`not a finite number: ${v}`);
    return String(Math.trunc(v));
  }
  if (typeof v === 'string') return quote(v);
  return v.map((x) => (x instanceof Script ? x.text : quote(x))).join(' ');
}

export function sh(strings: TemplateStringsArray, ...values: Value[]): Script {
  // The raw literal parts: shell text is written as the shell reads it (`printf '%s\n'` stays as is).
  const raw = strings.raw;
  let out = raw[0]!;
  values.forEach((v, i) => (out += piece(v) + raw[i + 1]!));
  return new Script(out);
}

/** Environment assignments for one command: NAME=value … (names are checked, values quoted). */
export function envPrefix(env: Readonly<Record<string, string>>): Script {
  return new Script(
    Object.entries(env)
      .map(([k, v]) => {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`not a variable name: ${k}`);
        return `${k}=${quote(v)}`;
      })
      .join(' '),
  );
}

/**
 * `if C1; then B1; elif C2; then B2; …; else E; fi` from its cases in order, so a long chain reads as a
 * list: each condition beside what it does. Only Scripts go in (no value is left unquoted).
 */
export function cases(branches: ReadonlyArray<readonly [Script, Script]>, otherwise?: Script): Script {
  const arms = branches.map(
    ([condition, body], i) => `${i ? 'elif' : 'if'} ${condition.text}; then ${body.text}; `,
  );
  return new Script(`${arms.join('')}${otherwise ? `else ${otherwise.text}; ` : ''}fi`);
}
