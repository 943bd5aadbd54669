/**
 * Blue-green behind a proxy: the tenant's two slots are Compose projects of their own, each on its own
 * port. A deploy reads where the proxy sends the tenant (the live slot; a port of neither slot is the
 * in-place stack the tenant ran before it moved to blue-green), starts the idle slot with the new release
 * (`switchTo`), has the gate probe that slot directly (`gatePort`), switches the proxy and verifies through
 * it (`promote`), then drains the old slot's connections and stops it (`retire`). Before the proxy
 * switch a rollback only stops the idle slot; after it, the proxy is switched back to the old slot,
 * which runs until `retire`, the last step. A release a slot still runs is switched to without restarting
 * it: that is how a manual rollback returns to the old slot.
 */
import type { BlueGreen, SlotName, Target } from '../../registry/model';
import { SLOTS } from '../../registry/model';
import { COMPOSE_PROJECT } from '../../registry/patterns';
import { versionOf } from '../../registry/release';
import { projectOf } from '../../remote/compose';
import { containerHealth } from '../../remote/containers';
import type { PrepareReads, Prepared } from '../../remote/prepare';
import * as B from '../../remote/blue-green';
import { Script } from '../../remote/shell';
import { slotsInspection, stackState, type TenantInspection } from '../../remote/status';
import { runGate, type GateProbe } from '../../health/gate';
import { proxyDriver, type ProxyDriver } from '../../proxy';
import { composeApiVersion } from '../engine-api';
import type { History } from '../history';
import type { Clock } from '../../ports';
import type { Release } from '../result';
import { describe, StepFailure } from '../shell';
import type {
  Promoted,
  ReleaseSpec,
  ReleaseStrategy,
  SlotStatus,
  StrategyContext,
  StrategyStatus,
} from '../strategy';
import { ComposeStrategy } from './compose';

/** Where the proxy sent the tenant when the deploy began. */
interface Live {
  /** undefined: a port of neither slot, the tenant's in-place stack (the Compose project itself). */
  slot?: SlotName;
  port: number;
  project: string;
  name: string;
}

type Projects = { base: string; blue: string; green: string };

/** What the deploy read before anything changed (`fetch`): the slots, the live one and the idle one. */
interface SlotsRead {
  projects: Projects;
  slots: B.Slots;
  live: Live;
  idle: SlotName;
  /** The image IDs the live slot (or the in-place stack) runs. */
  liveImages: string[];
}

/**
 * How far a deploy got, which a switch back undoes: the slots read; the idle slot started; the proxy
 * switched to it; the new slot recorded as live.
 */
type Reached = 'read' | 'started' | 'proxy' | 'recorded';

interface Deploy {
  read: SlotsRead;
  reached: Reached;
  /** Switched back: the health checks look at the live slot again. */
  switchedBack?: boolean;
}

/** True when a slot runs `release` now: its recorded references and its containers' images. */
function runs(slot: B.SlotState, release: Release): boolean {
  if (slot.running.length === 0 || release.imageIds.length === 0) return false;
  return (
    Object.entries(release.refs).every(([k, v]) => slot.refs[k] === v) &&
    release.imageIds.every((id) => slot.running.includes(id))
  );
}

/** How often the drain counts the old slot's connections. */
const DRAIN_POLL_MS = 250;

export class BlueGreenStrategy implements ReleaseStrategy {
  readonly switchStep = 'start';
  private readonly compose: ComposeStrategy;
  private readonly proxy: ProxyDriver;
  /** The running release, as `current` read it (its project names the slots' projects). */
  private running?: Release;
  /** What `fetch` read, and how far the deploy got since: the data each later step takes. */
  private deploy?: Deploy;

  constructor(
    private readonly target: Target,
    private readonly bg: BlueGreen,
  ) {
    this.compose = new ComposeStrategy(target);
    this.proxy = proxyDriver(target.tenant, bg.proxy);
  }

  private get tenant() {
    return this.target.tenant;
  }

  prepareReads(): PrepareReads {
    return this.compose.prepareReads();
  }

  inspect(): Script {
    return slotsInspection(this.tenant);
  }

  /**
   * The live release (.env) and the live slot's containers (none live yet: the in-place stack's), and
   * each slot's recorded release and state: the idle one holds the release a switch back returns to.
   */
  status(i: TenantInspection): StrategyStatus {
    const live = i.slots?.live;
    const first = this.tenant.images[0]?.variable ?? '';
    const slot = (s: SlotName): SlotStatus => {
      const { refs = {}, containers = [] } = i.slots?.[s] ?? {};
      const ref = refs[first];
      return { ...(ref ? { version: versionOf(ref) } : {}), refs, state: stackState(containers) };
    };
    return {
      ...this.compose.status(i),
      containers: live ? i.slots![live].containers : i.containers,
      slots: { ...(live ? { live } : {}), blue: slot('blue'), green: slot('green') },
    };
  }

  /** The running release (.env's); the slots' projects follow from its project, as the server derived it. */
  current(p: Prepared): Release {
    const running = this.compose.current(p);
    if (!COMPOSE_PROJECT.re.test(slotProjects(p.project!).green))
      throw new StepFailure(
        'prepare',
        `the slots' Compose projects of ${p.project} would be longer than 63 characters; set a shorter compose.project`,
      );
    this.running = running;
    return running;
  }

  /**
   * The slots' projects: from the running release's project once `current` read it; for a switch back by a
   * strategy that did not run the deploy, from the project of the release it returns to (as the server
   * derived it when the deploy began); else from the registry.
   */
  private projects(returnTo?: Release): Projects {
    return slotProjects(this.running?.project ?? returnTo?.project ?? projectOf(this.tenant));
  }

  release(spec: ReleaseSpec): Release {
    return this.compose.release(spec);
  }

  /** Reads the slots and the proxy (a proxy that is down fails here, before anything starts), then pulls. */
  async fetch(ctx: StrategyContext, next: Release): Promise<void> {
    const read = await this.readState(ctx);
    // The running release's images are the live slot's (`prepare` saw only the in-place project's).
    this.running?.imageIds.splice(0, Infinity, ...read.liveImages);
    this.deploy = { read, reached: 'read' };
    if (this.bg.proxy.kind === 'flag-file') await this.proxyAnswers(ctx);
    await this.compose.fetch(ctx, next);
  }

  /** The slots and where the proxy sends the tenant, in one round trip: nothing changes. */
  private async readState(ctx: StrategyContext, returnTo?: Release): Promise<SlotsRead> {
    const projects = this.projects(returnTo);
    const r = await ctx.shell.exec(B.readSlots(this.tenant, projects, this.proxy.read()));
    if (r.code === B.PROXY_DOWN)
      throw new StepFailure(
        'pull',
        `${this.proxy.label} did not answer, so nothing was started: ${describe(r)}`,
      );
    if (r.code !== 0) throw new StepFailure('pull', `reading the slots failed: ${describe(r)}`);
    const slots = B.parseSlots(r.stdout);
    const upstream = this.proxy.parse(slots.proxy);
    if ('error' in upstream) throw new StepFailure('pull', `${this.proxy.label}: ${upstream.error}`);
    const slot = SLOTS.find((s) => this.bg.slots[s].port === upstream.port);
    const live: Live = slot
      ? this.slotLive(slot, projects)
      : { port: upstream.port, project: projects.base, name: `the in-place stack on port ${upstream.port}` };
    return {
      projects,
      slots,
      live,
      idle: slot === 'blue' ? 'green' : 'blue',
      liveImages: slot ? slots[slot].running : slots.legacyRunning,
    };
  }

  private slotLive(slot: SlotName, projects: Projects): Live {
    return { slot, port: this.bg.slots[slot].port, project: projects[slot], name: `slot ${slot}` };
  }

  /** Something runs (a slot, or the in-place stack): only then can the backup's dump go through it. */
  stackRunning(): boolean {
    const s = this.deploy?.read.slots;
    if (!s) return this.compose.stackRunning();
    return s.blue.running.length + s.green.running.length + s.legacyRunning.length > 0;
  }

  /** A flag-file proxy has no API to read: one request through it tells that it answers, before anything starts. */
  private async proxyAnswers(ctx: StrategyContext): Promise<void> {
    const check = this.tenant.health;
    try {
      await this.throughProxy(ctx)(check.timeoutMs);
    } catch (e) {
      throw new StepFailure(
        'pull',
        `the proxy on 127.0.0.1:${check.port} did not answer, so nothing was started: ${(e as Error).message}`,
      );
    }
  }

  /** What `fetch` read, for a step that needs it (every step after it). */
  private read(step: string): SlotsRead {
    if (!this.deploy) throw new StepFailure(step, 'the slots were not read before this step');
    return this.deploy.read;
  }

  unchanged(_current: Release, next: Release): boolean {
    const live = this.deploy?.read.live.slot;
    return live !== undefined && runs(this.deploy!.read.slots[live], next);
  }

  async switchTo(
    ctx: StrategyContext,
    next: Release,
    _current: Release,
    switched: () => void,
  ): Promise<void> {
    const read = this.read('start');
    switched(); // from here on a failure stops the idle slot (and switches the proxy back once it moved)
    this.deploy = { read, reached: 'started' };
    const { idle, projects } = read;
    if (runs(read.slots[idle], next)) return; // the old slot of a switch back: up already
    const port = { variable: this.bg.portVariable, value: this.bg.slots[idle].port };
    const api = await composeApiVersion(ctx.shell, this.tenant);
    await ctx.shell.must(
      'start',
      B.startSlot(this.tenant, idle, projects[idle], next.refs, port, api),
      ctx.pullTimeoutMs,
    );
  }

  /** The idle slot's port (blue before the slots were read: as the dry run shows it). */
  gatePort(): number {
    return this.bg.slots[this.deploy?.read.idle ?? 'blue'].port;
  }

  /** The new slot's containers; after a switch back, the live slot's. */
  containerHealth(): Script {
    const d = this.deploy;
    const project = !d
      ? this.projects().blue
      : d.switchedBack
        ? d.read.live.project
        : d.read.projects[d.read.idle];
    return containerHealth(this.tenant, project);
  }

  async promote(ctx: StrategyContext, next: Release): Promise<Promoted> {
    const read = this.read('promote');
    const port = this.bg.slots[read.idle].port;
    const to = `slot ${read.idle} (127.0.0.1:${port})`;
    this.deploy = { read, reached: 'proxy' };
    await this.pointProxy(ctx, port, to, 'promote');
    const check = this.tenant.health;
    const seen = usersSaw(ctx.clock);
    const g = await runGate(
      check,
      next.version ?? '',
      seen.probe(this.throughProxy(ctx)),
      ctx.clock,
      ctx.signal,
    );
    if (!g.ok) throw new StepFailure('promote', `through the proxy on port ${check.port}: ${g.reason}`);
    await ctx.shell.must('promote', B.recordLive(this.tenant, read.idle, next.refs));
    this.deploy = { read, reached: 'recorded' };
    const downtimeMs = seen.downtimeMs();
    const down = downtimeMs ? `, down ${(downtimeMs / 1000).toFixed(1)} s` : '';
    return {
      detail: `${this.proxy.label} → ${to}, verified through port ${check.port} (${g.passed}/${g.probes} probes${down})`,
      downtimeMs,
    };
  }

  /** The tenant's health check asked through the proxy (its port on the server, over the SSH connection). */
  private throughProxy(ctx: StrategyContext): GateProbe {
    const check = this.tenant.health;
    return async (timeoutMs) => (await ctx.shell.transport()).get(check.port!, check.path, timeoutMs);
  }

  /** Switches the proxy to `port` and reads it back: a proxy that refused or holds another port fails. */
  private async pointProxy(ctx: StrategyContext, port: number, to: string, step: string): Promise<void> {
    const r = await ctx.shell.exec(B.inTenant(this.tenant, this.proxy.switchTo(port)));
    if (r.code !== 0)
      throw new StepFailure(step, `${this.proxy.label} refused the switch to ${to}: ${describe(r)}`);
    const now = this.proxy.parse(r.stdout);
    if ('error' in now || now.port !== port)
      throw new StepFailure(
        step,
        `${this.proxy.label} did not take the switch to ${to}: ${'error' in now ? now.error : `it sends the tenant to port ${now.port}`}`,
      );
  }

  /** Where the proxy sends the tenant now, when it answers: a refused switch left it where it was. */
  private async proxyPort(ctx: StrategyContext): Promise<number | undefined> {
    const r = await ctx.shell.exec(B.inTenant(this.tenant, this.proxy.read()));
    const now = r.code === 0 ? this.proxy.parse(r.stdout) : undefined;
    return now && 'port' in now ? now.port : undefined;
  }

  /** Waits until no connection to the old slot is open (or the drain timeout), then stops it. */
  async retire(ctx: StrategyContext): Promise<string> {
    const old = this.read('retire').live;
    const { open, seconds } = await this.drain(ctx, old.port);
    if (open !== 0 && ctx.signal?.aborted)
      return `drain cancelled with ${open} connections open: ${old.name} left running`;
    const drained =
      open === 0
        ? `drained ${old.name} in ${seconds} s`
        : `${old.name} still had ${open} connections after ${seconds} s`;
    const r = await ctx.shell.exec(B.stopProject(this.tenant, old.project));
    return r.code === 0 ? `${drained}, stopped` : `${drained}, NOT stopped: ${describe(r)}`;
  }

  /**
   * Polls the connections to a slot's port until none is open, the drain timeout passes or the run is
   * stopped; says how many were open at the last poll (-1: unknown) and after how long.
   */
  private async drain(ctx: StrategyContext, port: number): Promise<{ open: number; seconds: string }> {
    const start = ctx.clock.now();
    let open: number;
    for (;;) {
      const r = await ctx.shell.exec(B.connectionsTo(port));
      open = r.code === 0 ? Number(r.stdout.trim()) || 0 : -1;
      if (open === 0 || ctx.signal?.aborted) break;
      if (ctx.clock.now() - start >= this.bg.drainTimeoutMs) break;
      await ctx.clock.sleep(DRAIN_POLL_MS, ctx.signal);
    }
    return { open, seconds: ((ctx.clock.now() - start) / 1000).toFixed(1) };
  }

  /**
   * Before the proxy moved: stop the idle slot. After: point the proxy back at the old slot (it runs
   * until `retire`), see the old release answer through the proxy, record it as live again, and let the
   * failed slot drain before it is stopped — as a promote does for the slot it leaves: a proxy that
   * reloads (nginx) keeps sending new requests to the failed slot until its old workers have quit.
   */
  async switchBack(ctx: StrategyContext, previous: Release, failed: Release): Promise<void> {
    const deploy = this.deploy ?? (await this.recoverState(ctx, previous, failed));
    const { read, reached } = deploy;
    const { live, idle } = read;
    const proxyMoved = reached === 'proxy' || reached === 'recorded';
    if (proxyMoved && (await this.proxyPort(ctx)) !== live.port) {
      await this.pointProxy(ctx, live.port, live.name, 'rollback');
      await this.answersThroughProxy(ctx, previous, live.name);
      if (reached === 'recorded' && Object.keys(previous.refs).length)
        await ctx.shell.must('rollback', B.recordLive(this.tenant, live.slot, previous.refs));
    }
    this.deploy = { ...deploy, switchedBack: true };
    if (proxyMoved) await this.drain(ctx, this.bg.slots[idle].port);
    await ctx.shell.must('rollback', B.stopProject(this.tenant, read.projects[idle]));
  }

  /**
   * The health gate through the proxy, for the release it was pointed back to (a run being stopped
   * does not wait for it). A gate that fails leaves the failed slot running: the proxy may still use it.
   */
  private async answersThroughProxy(ctx: StrategyContext, release: Release, name: string): Promise<void> {
    const check = this.tenant.health;
    const g = await runGate(check, release.version ?? '', this.throughProxy(ctx), ctx.clock, ctx.signal);
    if (!g.ok && !ctx.signal?.aborted)
      throw new StepFailure(
        'rollback',
        `through the proxy on port ${check.port}, after it was pointed back to ${name}: ${g.reason}`,
      );
  }

  /**
   * For a switch back by a strategy that did not run the deploy (a cancelled job's post step): reads
   * the slots and the proxy, and when the proxy already sends the tenant to the slot that holds
   * `failed` while the other holds `previous`, takes that other slot as the one to return to.
   */
  private async recoverState(ctx: StrategyContext, previous: Release, failed: Release): Promise<Deploy> {
    const read = await this.readState(ctx, previous);
    const holds = (slot: SlotName, r: Release) =>
      Object.entries(r.refs).every(([k, v]) => read.slots[slot].refs[k] === v);
    const moved = read.live.slot;
    const back = moved === 'blue' ? 'green' : 'blue';
    if (moved && holds(moved, failed) && holds(back, previous) && read.slots[back].running.length) {
      const live = this.slotLive(back, read.projects);
      return { read: { ...read, live, idle: moved }, reached: 'recorded' };
    }
    if (!holds(read.idle, failed))
      throw new StepFailure(
        'rollback',
        `neither slot holds ${failed.version ?? 'the failed release'}: nothing to switch back`,
      );
    return { read, reached: 'read' };
  }

  prunable(history: History, next: Release, current: Release): string[] {
    return this.compose.prunable(history, next, current);
  }

  /** The commands when blue is the idle slot (green the live one). */
  preview(next: Release) {
    const t = this.tenant;
    const [blue, green] = [this.bg.slots.blue.port, this.bg.slots.green.port];
    const fetch = [B.readSlots(t, this.projects(), this.proxy.read()), this.compose.preview(next).fetch!];
    const port = { variable: this.bg.portVariable, value: blue };
    return {
      fetch: new Script(fetch.map(String).join('\n')),
      switch: B.startSlot(t, 'blue', this.projects().blue, next.refs, port),
      promote: [B.inTenant(t, this.proxy.switchTo(blue)), B.recordLive(t, 'blue', next.refs)],
      retire: [B.connectionsTo(green), B.stopProject(t, this.projects().green)],
    };
  }
}

/**
 * The downtime users saw through the proxy, from the probes of the check through it: from the first probe
 * that got no answer (refused, reset, timed out) or a 5xx to the first answer after it. An answer from
 * the old release (the proxy still finishing its switch) is not downtime: users were served.
 */
function usersSaw(clock: Clock) {
  let firstDown: number | undefined;
  let down = 0;
  const answered = (sent: number) => {
    if (firstDown !== undefined && !down) down = sent - firstDown;
  };
  return {
    probe:
      (get: GateProbe): GateProbe =>
      async (timeoutMs) => {
        const sent = clock.now();
        try {
          const res = await get(timeoutMs);
          if (res.status >= 500) firstDown ??= sent;
          else answered(sent);
          return res;
        } catch (e) {
          firstDown ??= sent;
          throw e;
        }
      },
    downtimeMs: () => down,
  };
}

function slotProjects(base: string): Projects {
  return { base, blue: `${base}-blue`, green: `${base}-green` };
}
