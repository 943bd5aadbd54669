/**
 * One pull per server and image: the tenants of one server that deploy the same image references share
 * one pull, on the server's one connection. The first target to need them runs the pull (with its
 * retries); the others wait for it and fill their release from its result, and their pull step says it
 * was shared. A failed pull fails each target that was waiting for it with the same error, and is
 * forgotten once settled, so a target that comes later tries again. A pulled image is remembered for the
 * rest of the rollout: the engine keeps it (pruning never removes the release being deployed).
 */

/** An image as the pull read it back from the engine: its ID and repository digests. */
export interface PulledImage {
  id: string;
  digests: string[];
}

export interface SharedPull {
  images: Promise<PulledImage[]>;
  /** The target whose pull this is, when it is another's. */
  sharedWith?: string;
}

const keyOf = (refs: readonly string[]) => JSON.stringify([...refs].sort());

export class ServerPulls {
  private readonly pulls = new Map<string, { by: string; images: Promise<PulledImage[]> }>();
  /** Pre-pulls in flight (prepull.ts): a pull of the same images waits for them, then finds the layers. */
  private readonly prePulls = new Map<string, Promise<unknown>>();

  /** The pull of `refs` for target `by`: the one already started by another target, or `pull()` now. */
  share(refs: readonly string[], by: string, pull: () => Promise<PulledImage[]>): SharedPull {
    const key = keyOf(refs);
    const known = this.pulls.get(key);
    if (known) return { images: known.images, sharedWith: known.by };
    const prePull = this.prePulls.get(key);
    const images = prePull ? prePull.then(pull, pull) : pull();
    this.pulls.set(key, { by, images });
    images.catch(() => this.pulls.delete(key));
    return { images };
  }

  /** Whether `refs` were pulled, or are being pulled, on this server in this rollout. */
  has(refs: readonly string[]): boolean {
    return this.pulls.has(keyOf(refs));
  }

  /** Notes a pre-pull of `refs` in flight, so a pull of them waits for it instead of racing it. */
  prePulling(refs: readonly string[], done: Promise<unknown>): void {
    const key = keyOf(refs);
    this.prePulls.set(key, done);
    void done.finally(() => this.prePulls.get(key) === done && this.prePulls.delete(key));
  }
}
