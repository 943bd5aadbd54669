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

export class ServerPulls {
  private readonly pulls = new Map<string, { by: string; images: Promise<PulledImage[]> }>();

  /** The pull of `refs` for target `by`: the one already started by another target, or `pull()` now. */
  share(refs: readonly string[], by: string, pull: () => Promise<PulledImage[]>): SharedPull {
    const key = JSON.stringify([...refs].sort());
    const known = this.pulls.get(key);
    if (known) return { images: known.images, sharedWith: known.by };
    const images = pull();
    this.pulls.set(key, { by, images });
    images.catch(() => this.pulls.delete(key));
    return { images };
  }
}
