/**
 * The lease on a tenant's deploy lock. The holder writes, on the server, the second at which it gives up
 * (the server's clock: both the holder's renewals and a later deploy's check run there, so no two clocks
 * are compared) and renews it while it works, over the same connection. When the connection is lost the
 * holder stops trying once its last renewal would have run out, so a lease past its second means its
 * holder has given up: the next deploy takes the lock over (src/remote/lock.ts `lockScript`, run by `prepare`) and first
 * mends what the holder was doing (`interruptedSwitch`). A live lease is never broken.
 *
 * Why the holder's deadline is safe on the runner's clock: a renewal sent at runner time `s` runs on the
 * server at or after `s` and writes "now + leaseS", so the server's expiry is at least `s + leaseS` (less
 * the second `date +%s` truncates, which `leaseTerms` adds back, with a second for slack). The holder
 * stops at `s + holdMs`, before that; only the two clocks' rates must agree, not their settings. holdMs
 * is the recovery window plus the longest a lost connection can go unnoticed by the renewals (an interval
 * and a renewal's timeout), so the holder still gets its whole window after it finds the connection lost.
 */
import type { Tenant } from '../registry/model';
import { IMAGE_REF } from '../registry/patterns';
import { isVersion } from './history';
import type { Clock, ExecResult } from '../ports';
import type { Release } from './result';

/** How a holder's lease is timed, from its recovery window and its command timeout. */
export interface LeaseTerms {
  /** How often it is renewed: a quarter of the window, between 1 s and 10 s (or as given). */
  everyMs: number;
  /** How long a renewal may take before it counts as unanswered. */
  renewTimeoutMs: number;
  /**
   * How long after a renewal was sent the holder may still work (runner clock): the window, counted from
   * when a lost connection is found at the latest — a renewal interval and a renewal's timeout later.
   */
  holdMs: number;
  /** The lease written on the server, in seconds from its now: holdMs, and 2 s for truncation and slack. */
  leaseS: number;
}

export function leaseTerms(windowMs: number, commandTimeoutMs = 10_000, everyMs?: number): LeaseTerms {
  const every = everyMs ?? Math.min(10_000, Math.max(1000, Math.floor(windowMs / 4)));
  const renewTimeoutMs = Math.min(commandTimeoutMs, windowMs, 10_000);
  const holdMs = windowMs + every + renewTimeoutMs;
  return { everyMs: every, renewTimeoutMs, holdMs, leaseS: Math.ceil(holdMs / 1000) + 2 };
}

/** A holder's lease: renewed in the background while the lock is held, and the moment it gives up. */
export class Lease {
  /** Runner clock: when this holder stops trying (Infinity: not renewed, so not bounded — tests only). */
  until = Infinity;
  /** Set when a renewal found the lease no longer ours: the deploy stops. */
  lost?: string;
  private readonly stop = new AbortController();
  private loop?: Promise<void>;

  constructor(
    private readonly clock: Clock,
    /** How long after a renewal was sent the holder may still work (LeaseTerms.holdMs). */
    private readonly holdMs: number,
    /** 0: no renewals (a fake clock's tests). */
    private readonly everyMs: number,
    private readonly renewOnce: () => Promise<ExecResult>,
    private readonly onLost: (why: string) => void,
  ) {}

  /** The lock was taken (or found ours) by a command sent at `sentAt`: renew from now on. */
  taken(sentAt: number): void {
    if (this.everyMs <= 0 || this.loop) return;
    this.until = sentAt + this.holdMs;
    this.loop = this.renewing().catch(() => undefined);
  }

  private async renewing(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      await this.clock.sleep(this.everyMs, signal);
      if (signal.aborted) return;
      const sent = this.clock.now();
      const r = await this.renewOnce().catch((e: Error) => ({ code: null, stdout: '', stderr: e.message }));
      if (r.code === 0 && r.stdout.includes('@@lease ok'))
        this.until = Math.max(this.until, sent + this.holdMs);
      else if (r.code === 0 && r.stdout.includes('@@lease lost')) {
        this.lost =
          'its lease on the lock ran out or the lock is no longer its own (another deploy took it over)';
        this.until = Math.min(this.until, this.clock.now());
        this.onLost(this.lost);
        return;
      }
      // busy, or no answer (the connection is down): the next try, or the deadline, decides
    }
  }

  /** Stops renewing, and waits for a renewal in flight (so it cannot write into a lock being released). */
  async end(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }
}

/** What an interrupted deploy was switching, from the note it left in its lock (server text, checked). */
export interface InterruptedSwitch {
  from?: Release;
  to: Release;
}

/** The note's releases; anything that is not the tenant's image variable and a reference is refused. */
export function interruptedSwitch(note: string, t: Tenant): InterruptedSwitch | undefined {
  let n: Record<string, unknown>;
  try {
    n = JSON.parse(note) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (n === null || typeof n !== 'object' || typeof n.to !== 'string' || !isVersion(n.to)) return undefined;
  const refs = (v: unknown): Record<string, string> | undefined => {
    if (v === null || typeof v !== 'object') return undefined;
    const out: Record<string, string> = {};
    for (const i of t.images) {
      const r = (v as Record<string, unknown>)[i.variable];
      if (typeof r !== 'string' || !IMAGE_REF.test(r)) return undefined;
      out[i.variable] = r;
    }
    return out;
  };
  const toRefs = refs(n.toRefs) ?? {};
  const fromRefs = refs(n.fromRefs);
  const release = (version: string, r: Record<string, string>): Release => ({
    refs: r,
    version,
    imageIds: [],
    digests: [],
  });
  const from =
    typeof n.from === 'string' && isVersion(n.from) && fromRefs ? release(n.from, fromRefs) : undefined;
  return { to: release(n.to, toRefs), ...(from ? { from } : {}) };
}
