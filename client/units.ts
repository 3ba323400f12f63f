/**
 * The units every answer uses, one helper each: times are Unix seconds as a float (the wire
 * protocol's `timestamp`), money is US dollars rounded to the nano-dollar (sums of float costs
 * otherwise show noise such as 0.0005089000000000001).
 */

/** Epoch milliseconds → Unix seconds (float); null and undefined pass through. */
export function unixSeconds(ms: number): number;
export function unixSeconds(ms: number | null | undefined): number | null;
export function unixSeconds(ms: number | null | undefined): number | null {
  return ms === null || ms === undefined ? null : ms / 1000;
}

/** An ISO-8601 date string → Unix seconds (float); null and undefined pass through. */
export function isoToUnixSeconds(iso: string | null | undefined): number | null {
  return iso === null || iso === undefined ? null : Date.parse(iso) / 1000;
}

/** Unix seconds (float) → epoch milliseconds, for inputs given in the answers' unit. */
export const unixSecondsToMs = (s: number): number => Math.round(s * 1000);

/** Dollars rounded to the nano-dollar (9 decimals); null and undefined pass through. */
export function roundUsd(usd: number): number;
export function roundUsd(usd: number | null | undefined): number | null;
export function roundUsd(usd: number | null | undefined): number | null {
  return usd === null || usd === undefined ? null : Math.round(usd * 1e9) / 1e9;
}
