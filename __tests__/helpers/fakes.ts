/**
 * Doubles for orchestration tests (named so): a fake clock that advances only when slept on, and a
 * scripted transport that answers each remote command by its first matching rule and records them all.
 * The real SSH transport is covered by the integration tests against sshd.
 */
import type { Clock, Connector, ExecOptions, ExecResult, HttpResponse, Transport } from '../../src/ports';
import type { Server } from '../../src/registry';
import type { Script } from '../../src/remote/shell';

export class FakeClock implements Clock {
  t = 1_700_000_000_000;
  now = () => this.t;
  sleep = async (ms: number) => {
    this.t += ms;
    await Promise.resolve();
  };
}

/**
 * A rule answers the scripts of one remote verb (the builder that made them: 'prepare', 'pull',
 * 'update', 'finish', …), or those whose text matches a pattern (a user's command).
 */
export type Rule = {
  match: RegExp | Verb;
  reply: ExecResult | ((cmd: string) => ExecResult | Promise<ExecResult>);
};
export type Verb =
  | 'prepare'
  | 'pull'
  | 'update'
  | 'hibernate'
  | 'containerHealth'
  | 'containerRuns'
  | 'containerLogs'
  | 'prePull'
  | 'engineApiVersion'
  | 'finish'
  | 'readHistory'
  | 'runUserCommand'
  | 'backup';

const matches = (rule: Rule, script: Script) =>
  typeof rule.match === 'string' ? script.verb === rule.match : rule.match.test(script.text);

export const ok = (stdout = ''): ExecResult => ({ code: 0, stdout, stderr: '' });
export const fail = (code: number | null, stderr = ''): ExecResult => ({ code, stdout: '', stderr });

/** A healthy prepare answer for one image variable. */
export const prepared = (ref: string, running = ['sha256:old'], history: string[] = []) =>
  ok(
    [
      'free_kb=4096000',
      '@@project app',
      '@@env',
      `APP_IMAGE=${ref}`,
      '@@running',
      ...running,
      '@@history',
      ...history,
      '@@end',
    ].join('\n'),
  );

export class ScriptedConnector implements Connector {
  /** Every command run, and what was written to its stdin (a registry password), if anything. */
  readonly log: Array<{ server: string; verb?: string; command: string; stdin?: string }> = [];
  connects = 0;
  http: (server: string, port: number) => HttpResponse | Promise<HttpResponse> = () => ({
    status: 200,
    body: '{"status":"ok"}',
  });
  active = 0;
  maxActive = 0;
  readonly activeByServer = new Map<string, number>();
  maxPerServer = 0;

  constructor(
    public rules: (server: string) => Rule[],
    public refuse: (server: string) => Error | undefined = () => undefined,
  ) {}

  async connect(server: Server): Promise<Transport> {
    this.connects++;
    const refusal = this.refuse(server.name);
    if (refusal) throw refusal;
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the transport object refers back to its connector
    return {
      alive: true,
      async exec(script: Script, options?: ExecOptions): Promise<ExecResult> {
        self.log.push({
          server: server.name,
          verb: script.verb,
          command: script.text,
          ...(options?.stdin !== undefined ? { stdin: options.stdin } : {}),
        });
        self.active++;
        self.activeByServer.set(server.name, (self.activeByServer.get(server.name) ?? 0) + 1);
        self.maxActive = Math.max(self.maxActive, self.active);
        self.maxPerServer = Math.max(self.maxPerServer, self.activeByServer.get(server.name)!);
        try {
          await new Promise((r) => setImmediate(r));
          const rule = self.rules(server.name).find((r) => matches(r, script));
          if (!rule) throw new Error(`no rule for: ${script.text.slice(0, 80)}`);
          return typeof rule.reply === 'function' ? await rule.reply(script.text) : rule.reply;
        } finally {
          self.active--;
          self.activeByServer.set(server.name, self.activeByServer.get(server.name)! - 1);
        }
      },
      async get(port: number) {
        return self.http(server.name, port);
      },
      async close() {},
    };
  }
}

/** Rules for a target that deploys cleanly from v1 to the pulled image. */
export const happyRules = (from = 'r/app:v1'): Rule[] => [
  { match: 'prepare', reply: prepared(from) },
  { match: 'pull', reply: ok('sha256:new|["r/app@sha256:d1"]\n') },
  { match: 'update', reply: ok() },
  { match: 'finish', reply: ok('@@unlock released\n') },
];
