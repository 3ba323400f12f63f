/** Budget periods and the usage buckets that count spend inside them (UTC calendar days and months). */
export const PERIODS = ['total', 'daily', 'monthly'] as const;
export type Period = (typeof PERIODS)[number];

export const SCOPES = ['global', 'agent', 'session', 'workflow'] as const;
export type Scope = (typeof SCOPES)[number];

const DAY_MS = 86_400_000;

/** The day's bucket keys, remembered for the day: every check, reservation and settlement asks. */
let today = { day: NaN, daily: '', monthly: '' };

/** The bucket key that holds spend for `period` at time `ms`. */
export function bucketOf(period: Period, ms: number): string {
  if (period === 'total') return 'total';
  const day = Math.floor(ms / DAY_MS);
  if (day !== today.day) {
    const iso = new Date(day * DAY_MS).toISOString();
    today = { day, daily: `d:${iso.slice(0, 10)}`, monthly: `m:${iso.slice(0, 7)}` };
  }
  return period === 'daily' ? today.daily : today.monthly;
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
