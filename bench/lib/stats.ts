/** Small statistics the benchmarks share. */

/** The median of `xs` (the mean of the two middle values when their count is even); NaN when empty. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
}
