/**
 * How much of a health answer a probe reads, for both probes (from the runner and through SSH): the
 * first PROBE_BODY_LIMIT bytes, then the stream is closed. A server that sends an endless body cannot make
 * the runner hold more than that, and the probe ends as soon as it has it.
 */
export const PROBE_BODY_LIMIT = 64 * 1024;

/** Reads at most `limit` bytes of a body (a Node stream or a web stream) and stops reading there. */
export async function readCapped(
  body: AsyncIterable<Uint8Array>,
  limit = PROBE_BODY_LIMIT,
): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  // leaving the loop early calls the iterator's return(), which destroys or cancels the stream
  for await (const chunk of body) {
    const room = limit - size;
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(chunk.byteLength, room)));
    size += Math.min(chunk.byteLength, room);
    if (chunk.byteLength >= room) return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}
