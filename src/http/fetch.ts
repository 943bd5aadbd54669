/**
 * HTTP GET from the runner (for health URLs that are public), with a timeout that covers the whole answer
 * and a cap on how much of the body is read (an endless body is cut at PROBE_BODY_LIMIT, not buffered).
 */
import type { HttpResponse } from '../ports';
import { readCapped } from './body';

export async function fetchUrl(url: string, timeoutMs: number): Promise<HttpResponse> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const response = await fetch(url, { signal: ac.signal, redirect: 'manual' });
    const body = response.body ? (await readCapped(response.body)).text : '';
    return { status: response.status, body };
  } catch (e) {
    if (ac.signal.aborted) throw new Error(`no answer within ${timeoutMs} ms`, { cause: e });
    throw e;
  } finally {
    clearTimeout(timer);
    ac.abort(); // a body left unread (cut at the cap) is not kept open
  }
}
