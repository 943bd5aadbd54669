/** HTTP GET from the runner (for health URLs that are public), with a timeout. */
import type { HttpResponse } from '../deploy/ports';

export async function fetchUrl(url: string, timeoutMs: number): Promise<HttpResponse> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  const body = await response.text();
  return { status: response.status, body: body.slice(0, 65536) };
}
