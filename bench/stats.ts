/** Percentiles and rounding for benchmark reports. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summarize(samplesMs: number[]): { p50_us: number; p99_us: number; n: number } {
  const s = [...samplesMs].sort((a, b) => a - b);
  return { p50_us: round(percentile(s, 50) * 1000), p99_us: round(percentile(s, 99) * 1000), n: s.length };
}

export const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
export const ratio = (a: number, b: number): number => round(a / b, 3);
