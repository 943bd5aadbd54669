/**
 * Hostile input, property-based (fast-check), more than 10,000 generated cases a run:
 * - quoting: any string through `sh` reaches a real `sh` as that one literal argument, and a canary file
 *   that an injection would create never appears;
 * - every registry field that reaches a remote shell: a hostile value is refused with a ConfigurationError
 *   naming the field, or accepted, and then the deploy's scripts built from it, run by a real `sh`, create
 *   no canary;
 * - every value read back from a server (prepare's output: .env refs, lock owner, history lines; remote
 *   text reaching logs): checked before use (a reference that is not one stops the deploy with a clear
 *   error; a history line that fails the patterns is dropped; a lock owner's fields hold no control
 *   character) and printed only through sanitize, which leaves no escape, control or workflow command.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ConfigurationError } from '../../src/errors';
import { parseRegistry } from '../../src/registry';
import * as release from '../../src/registry/release';
import * as images from '../../src/remote/images';
import * as lock from '../../src/remote/lock';
import * as prepare from '../../src/remote/prepare';
import * as update from '../../src/remote/update';
import { sh } from '../../src/remote/shell';
import { sanitize, sanitizeLine } from '../../src/report/sanitize';
import { parseHistory } from '../../src/deploy/history';
import { describeHolder, parseLockOwner } from '../../src/deploy/locks';
import { ComposeStrategy } from '../../src/deploy/strategies/compose';
import { StepFailure } from '../../src/deploy/shell';
import { baseRegistry } from '../helpers/registry';
import { scenario } from './lib/record';

/** The remote verbs this file drives, from their files by concern, under the one name it has always used. */
const R = { ...release, ...images, ...lock, ...prepare, ...update };

const root = mkdtempSync(join(tmpdir(), 'fd-chaos-hostile-'));
const CANARY = join(root, 'canary');
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Pieces of shell an attacker would try, each aimed at creating the canary. */
const INJECTIONS = [
  `$(touch ${CANARY})`,
  `\`touch ${CANARY}\``,
  `; touch ${CANARY}`,
  `&& touch ${CANARY}`,
  `| touch ${CANARY}`,
  `\ntouch ${CANARY}\n`,
  `'; touch ${CANARY}; '`,
  `"; touch ${CANARY}; "`,
  `$(IFS=_;cmd=touch_${CANARY};$cmd)`,
  `\${PATH:0:0}$(touch ${CANARY})`,
];
const PIECES = [
  ...INJECTIONS,
  "'",
  '"',
  '\\',
  '$',
  '`',
  '*',
  '?',
  '~',
  '!',
  '#',
  '{a,b}',
  '-n',
  '--',
  ' ',
  '\t',
  '\n',
  '\r',
  '\x1b[2J',
  '::warning::x',
  '%s',
  '$HOME',
  '../',
  '/',
  'a',
  'v1',
];
/** Hostile strings: shell pieces, arbitrary Unicode (no NUL: no argument can hold one) and mixtures. */
const hostile = fc.oneof(
  fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 6 }).map((a) => a.join('')),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((s) => s.replaceAll('\0', '')),
);

/** Runs a script with a real sh in the scratch directory; a recording `docker` double first on PATH. */
function runSh(text: string) {
  return spawnSync('sh', ['-c', text], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: `${join(root, 'bin')}:/usr/bin:/bin` },
    maxBuffer: 64 * 1024 * 1024,
  });
}

beforeAll(() => {
  mkdirSync(join(root, 'bin'));
  writeFileSync(
    join(root, 'bin', 'docker'),
    '#!/bin/sh\n# double of the docker CLI: does nothing\nexit 0\n',
    {
      mode: 0o755,
    },
  );
});

/** An assertion for the hot loops of the properties (expect() costs more than the case itself). */
function check(ok: boolean, what: string, value: unknown): void {
  if (!ok) throw new Error(`${what}: ${JSON.stringify(value)}`);
}
const SAFE_REF = /^[^\s;|&$`'"\\<>()]+$/;
const VERSION = /^[\w.:@+-]+$/;
const REFUSAL = /not an image reference|could not tell the Compose project/;
/* eslint-disable no-control-regex */
const CONTROL = /[\x00-\x1f\x7f]/;
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
/* eslint-enable no-control-regex */

const RUNS = 50;
const BATCH = 200;

describe('hostile input', () => {
  scenario(
    'hostile input',
    'any value through sh() reaches a real sh as one literal argument',
    'the shell sees exactly the value; an injection never runs (canary)',
    async () => {
      let cases = 0;
      fc.assert(
        fc.property(fc.array(hostile, { minLength: BATCH, maxLength: BATCH }), (values) => {
          cases += values.length;
          const r = runSh(sh`printf '%s\0' ${values}`.text);
          expect(r.status).toBe(0);
          expect(r.stdout.split('\0').slice(0, -1)).toEqual(values);
        }),
        { numRuns: RUNS },
      );
      expect(existsSync(CANARY)).toBe(false);
      return { measured: 'every value came back byte for byte; canary absent', cases, injections: 0 };
    },
  );

  /** The registry fields whose values reach a remote shell, and where each is in the registry. */
  const FIELDS: Array<{ name: string; set: (r: any, v: string) => void }> = [
    { name: 'path', set: (r, v) => (r.servers[0].tenants[0].path = v) },
    { name: 'id', set: (r, v) => (r.servers[0].tenants[0].id = v) },
    { name: 'variable', set: (r, v) => (r.servers[0].tenants[0].images[0].variable = v) },
    { name: 'repository', set: (r, v) => (r.servers[0].tenants[0].images[0].repository = v) },
    { name: 'files', set: (r, v) => (r.servers[0].tenants[0].compose = { files: [v] }) },
    { name: 'project', set: (r, v) => (r.servers[0].tenants[0].compose = { project: v }) },
    { name: 'services', set: (r, v) => (r.servers[0].tenants[0].compose = { services: [v] }) },
    { name: 'user', set: (r, v) => (r.servers[0].user = v) },
    { name: 'host', set: (r, v) => (r.servers[0].host = v) },
    { name: 'name', set: (r, v) => (r.servers[0].name = v) },
  ];

  scenario(
    'hostile input',
    'every registry field that reaches a shell, and --version',
    'refused with a ConfigurationError naming the field, or accepted and run by a real sh without injection',
    async () => {
      let cases = 0;
      let refused = 0;
      const field = fc.constantFrom(...FIELDS);
      fc.assert(
        fc.property(
          fc.array(fc.tuple(field, hostile, hostile), { minLength: BATCH, maxLength: BATCH }),
          (batch) => {
            const scripts: string[] = [];
            for (const [f, value, version] of batch) {
              cases++;
              const reg = baseRegistry();
              f.set(reg, value);
              let tenant;
              try {
                tenant = parseRegistry(JSON.stringify(reg), 'reg.json').servers[0]!.tenants[0]!;
              } catch (e) {
                if (!(e instanceof ConfigurationError)) throw e;
                const named = e.problems.some(
                  (x) => x.path.join('.').includes(f.name) || x.message.includes(f.name),
                );
                check(named, `the error names ${f.name}`, e.message);
                refused++;
                continue;
              }
              let v: string;
              try {
                v = R.checkVersion(version);
              } catch (e) {
                check(
                  (e as ConfigurationError).problems[0]!.source === '--version',
                  'the error names --version',
                  version,
                );
                v = 'v1';
              }
              const ref = R.imageRef(tenant.images[0]!, v);
              const built = [
                R.prepare(tenant, { owner: JSON.stringify({ actor: value }), leaseS: 60, breakAfterS: 60 }),
                R.pullImages(tenant, [ref]),
                R.update(tenant, { [tenant.images[0]!.variable]: ref }),
                R.finish(tenant, { token: 'tok', history: JSON.stringify({ error: value }) }),
              ];
              scripts.push(...built.map((s) => `( ${s.text} ) >/dev/null 2>&1`));
            }
            if (scripts.length) runSh(scripts.join('\n'));
            check(!existsSync(CANARY), 'no canary', batch);
          },
        ),
        { numRuns: RUNS / 2 },
      );
      return {
        measured: `each refused naming its field or run without injection (${FIELDS.length} fields and --version); canary absent`,
        cases,
        injections: 0,
        detail: `${refused} refused`,
      };
    },
  );

  /** Server text: hostile pieces and the forms that prepare's output, a lock owner or history take. */
  const serverText = fc
    .array(
      fc.oneof(
        hostile,
        fc.constantFrom('@@env', '@@history', '@@lock', '@@age 5', '@@project app', '@@running', '@@end'),
        hostile.map((v) => `APP_IMAGE=${v}`),
        hostile.map((v) =>
          JSON.stringify({ time: '2024-01-01T00:00:00Z', outcome: 'deployed', from: v, to: 'v2', actor: v }),
        ),
        hostile.map((v) => JSON.stringify({ token: v, actor: v, run: v, version: v })),
      ),
      { maxLength: 8 },
    )
    .map((lines) => lines.join('\n'));

  const tenant = parseRegistry(JSON.stringify(baseRegistry()), 'reg.json').servers[0]!.tenants[0]!;
  const target = { tenant, server: { name: 'eu-1' }, id: 'eu-1/acme' } as any;

  scenario(
    'hostile input',
    'every value read back from a server',
    '.env refs checked (a bad one stops the deploy, said clearly), history and lock owners filtered, printed text sanitized',
    async () => {
      let cases = 0;
      fc.assert(
        fc.property(serverText, (text) => {
          cases++;
          const p = R.parsePrepared(text);
          try {
            const release = new ComposeStrategy(target).current(p);
            for (const ref of Object.values(release.refs))
              check(SAFE_REF.test(ref), 'a checked reference', ref);
          } catch (e) {
            if (!(e instanceof StepFailure)) throw e;
            check(REFUSAL.test(e.message), 'a clear refusal', e.message);
          }
          for (const h of parseHistory(p.history))
            for (const v of [h.from, h.to]) check(v == null || VERSION.test(v), 'a checked version', v);
          for (const v of Object.values(parseLockOwner(text) ?? {})) check(!CONTROL.test(v), 'no control', v);
          for (const shown of [sanitize(text), sanitizeLine(text), sanitize(describeHolder(text, 3))]) {
            check(!RAW.test(shown), 'no escape or control printed', shown);
            check(!/^\s*::/m.test(shown) && !shown.includes('##['), 'no workflow command printed', shown);
          }
        }),
        { numRuns: RUNS * BATCH },
      );
      // and plain text reaches the log as itself
      fc.assert(
        fc.property(fc.string({ unit: fc.constantFrom(...'abc XYZ 019 .,-_/=+@'.split('')) }), (s) => {
          cases++;
          check(sanitize(s) === s, 'plain text unchanged', s);
        }),
        { numRuns: 1000 },
      );
      return {
        measured:
          'no unchecked reference used, no raw escape or workflow command printed; plain text unchanged',
        cases,
        injections: 0,
      };
    },
  );
});
