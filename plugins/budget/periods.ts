/** Budget periods and the usage buckets that count spend inside them (UTC calendar days and months). */
export const PERIODS = ['total', 'daily', 'monthly'] as const;
export type Period = (typeof PERIODS)[number];

export const SCOPES = ['global', 'agent', 'session'] as const;
export type Scope = (typeof SCOPES)[number];

/** The bucket key that holds spend for `period` at time `ms`. */
export function bucketOf(period: Period, ms: number): string {
  if (period === 'total') return 'total';
  const iso = new Date(ms).toISOString();
  return period === 'daily' ? `d:${iso.slice(0, 10)}` : `m:${iso.slice(0, 7)}`;
}

/** Epoch ms when the current bucket of `period` ends (null for total). */
export function bucketEnd(period: Period, ms: number): number | null {
  if (period === 'total') return null;
  const d = new Date(ms);
  return period === 'daily'
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** The buckets one call's spend is added to: every period, so any limit set later already sees it. */
export const allBuckets = (ms: number): string[] => PERIODS.map((p) => bucketOf(p, ms));
