/**
 * Waves: how a selection is cut into successive groups.
 *
 * A spec is either
 *   - a list of cumulative steps, e.g. `1,5%,25%,100%`: each step is a count of targets (`1`, `10`) or a
 *     share of the selection (`5%`, rounded up), and says how many targets have been deployed once that
 *     wave is done. Every wave deploys at least one more target than the one before, while targets
 *     remain; a step that would add none still adds one, and steps after the selection is used up are
 *     dropped (so 3 targets with `1,5%,25%,100%` give three waves of one). The last step must be `100%`.
 *   - `rings`: one wave per ring, in the registry's ring order, skipping rings with no selected target.
 *   - `all` (the default): one wave with everything; the same as `100%`.
 */
import { ConfigurationError } from '../errors';

export type Step = { count: number } | { percent: number };
export type WaveSpec = { kind: 'steps'; steps: Step[] } | { kind: 'rings' };

function bad(spec: string, message: string, hint: string, source: string): never {
  throw new ConfigurationError([{ path: [], source, message: `${JSON.stringify(spec)}: ${message}`, hint }]);
}

const EXAMPLE = 'e.g. "1,5%,25%,100%", "rings" or "all"';

export function parseWaveSpec(spec: string, source = '--waves'): WaveSpec {
  const text = spec.trim();
  if (text === '' || text === 'all') return { kind: 'steps', steps: [{ percent: 100 }] };
  if (text === 'rings') return { kind: 'rings' };
  const steps = text.split(',').map((raw, i): Step => {
    const s = raw.trim();
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(s);
    if (pct) {
      const percent = Number(pct[1]);
      if (percent <= 0 || percent > 100)
        bad(spec, `step ${i + 1} "${s}" is not a share from 0% (exclusive) to 100%`, EXAMPLE, source);
      return { percent };
    }
    if (/^\d+$/.test(s)) {
      const count = Number(s);
      if (count < 1) bad(spec, `step ${i + 1} "${s}" must be at least 1`, EXAMPLE, source);
      return { count };
    }
    return bad(
      spec,
      `step ${i + 1} ${JSON.stringify(s)} is neither a count ("5") nor a share ("25%")`,
      EXAMPLE,
      source,
    );
  });
  for (let i = 1; i < steps.length; i++) {
    const [a, b] = [steps[i - 1]!, steps[i]!];
    const shrinks =
      'percent' in a && 'percent' in b
        ? b.percent < a.percent
        : 'count' in a && 'count' in b
          ? b.count < a.count
          : false;
    if (shrinks)
      bad(
        spec,
        `step ${i + 1} is smaller than step ${i}; steps are cumulative and never shrink`,
        EXAMPLE,
        source,
      );
  }
  const last = steps[steps.length - 1]!;
  if (!('percent' in last && last.percent === 100)) {
    bad(
      spec,
      'the last step must be 100%, so that every selected target is deployed',
      `e.g. "${text},100%"`,
      source,
    );
  }
  return { kind: 'steps', steps };
}

/** Wave sizes for `total` targets under a step spec (pure arithmetic; see the module comment). */
export function waveSizes(total: number, steps: Extract<WaveSpec, { kind: 'steps' }>['steps']): number[] {
  const sizes: number[] = [];
  let done = 0;
  for (const step of steps) {
    if (done >= total) break;
    const wanted = 'count' in step ? step.count : Math.ceil((step.percent * total) / 100 - 1e-9);
    const next = Math.min(total, Math.max(done + 1, wanted));
    sizes.push(next - done);
    done = next;
  }
  return sizes;
}

/**
 * The GitHub environment of each wave: the Nth name of a comma-separated list for wave N, the last name
 * for every later wave (so "canary,production" puts wave 1 in canary and the rest in production), and
 * `fallback` for every wave when the list is empty. Names beyond the plan's waves are unused.
 */
export function waveEnvironments(list: string, fallback: string, waves: number, source: string): string[] {
  const names = list.trim() === '' ? [fallback] : list.split(',').map((n) => n.trim());
  const bad = names.findIndex((n) => n === '' || n.length > 255);
  if (bad >= 0)
    throw new ConfigurationError([
      {
        path: [],
        source,
        message: `${JSON.stringify(list)}: name ${bad + 1} is ${names[bad] === '' ? 'empty' : 'longer than 255 characters'}`,
        hint: 'one environment name per wave, separated by ",", e.g. "canary,production"',
      },
    ]);
  return Array.from({ length: waves }, (_, i) => names[Math.min(i, names.length - 1)]!);
}
