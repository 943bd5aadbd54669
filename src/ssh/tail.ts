/**
 * What the transport keeps of a command's output: the last `limit` bytes of each stream. A command that
 * prints hundreds of megabytes (a chatty hook) costs the runner no more than that, and the output keeps
 * its end, where errors are; a marker line says how much was cut.
 */
export const STDOUT_TAIL_LIMIT = 1024 * 1024; // room for the tool's own structured answers (200 history lines)
export const STDERR_TAIL_LIMIT = 64 * 1024;

export class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  private cut = 0;

  constructor(
    private readonly stream: 'stdout' | 'stderr',
    private readonly limit: number,
  ) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > this.limit * 2) this.trim(); // amortised: trim when twice the limit is held
  }

  text(): string {
    this.trim();
    let kept = Buffer.concat(this.chunks);
    if (this.cut === 0) return kept.toString('utf8');
    let skip = 0; // start on a whole UTF-8 character
    while (skip < kept.length && skip < 3 && (kept[skip]! & 0xc0) === 0x80) skip++;
    kept = kept.subarray(skip);
    return (
      `[fleet-deploy: ${this.cut + skip} bytes of ${this.stream} cut here; the last ${kept.length} ` +
      `bytes follow]\n${kept.toString('utf8')}`
    );
  }

  private trim(): void {
    if (this.size <= this.limit) return;
    const all = Buffer.concat(this.chunks);
    const drop = all.length - this.limit;
    this.cut += drop;
    this.chunks = [Buffer.from(all.subarray(drop))]; // a copy: the dropped head is freed
    this.size = this.limit;
  }
}
