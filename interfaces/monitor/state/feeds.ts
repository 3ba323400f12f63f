/**
 * The subscriptions the monitor follows the daemon with, and why. Receiving and parsing every
 * event costs the same as a subscriber that does nothing with them (several percent of a core at
 * 10,000 events/s), so the monitor takes in full only what its panels derive state from, and a
 * rate-bounded sample of the rest; the daemon counts what it did not send (`monitor:skipped`), so
 * the totals stay exact while the cost stays flat whatever the daemon's event rate.
 *
 * - lifecycle: unbounded; every event a panel derives from, plus rare ones an operator must not
 *   miss in the log (plugin failures, shutdown, budget alerts, bridge peers).
 * - tokens: `completion:token`, rate-bounded. Several streams at once can produce hundreds a
 *   second; the panel only needs tokens/s and per-request counts, so a sample scaled by the skipped
 *   count keeps tokens/s right, and each request's result (its usage) settles its count.
 * - census: `*`, rate-bounded. Every event is delivered or counted as skipped on it exactly once,
 *   so it alone defines "seen", the per-namespace counts and the rate; it is also the log's sample.
 * - log: the filter's own patterns, rate-bounded, while a filter is set: a rare matching event in a
 *   flood of others would almost never be in the census sample.
 * `sandbox:output` is only shown in the log (no panel counts it), so it comes with the samples.
 */
import type { Filter } from './patterns.js';

/**
 * Which subscription a frame came through; `connection` for what the daemon addresses to the
 * connection (`monitor:dropped`). History (`monitor:events`) and a single stream of everything have none.
 */
export type Via = 'lifecycle' | 'tokens' | 'census' | 'log' | 'connection';

export const LIFECYCLE_PATTERNS = [
  'completion:started',
  'completion:result',
  'completion:error',
  'completion:cancelled',
  'sandbox:exec_started',
  'sandbox:exec_finished',
  'sandbox:engine',
  'sandbox:session_created',
  'sandbox:session_destroyed',
  'agent:**',
  'budget:warning',
  'budget:exceeded',
  'plugin:*',
  'kg:changed',
  'system:*',
  'checkpoint:*',
  'bridge:*',
];

export const TOKEN_PATTERNS = ['completion:token'];
export const CENSUS_PATTERNS = ['*'];

/** Events a second each rate-bounded subscription may bring (bursts up to as many). */
export const RATES = { tokens: 100, census: 100, log: 100 } as const;

/** The log subscription a filter needs: none when the census (`*`) already is one. */
export function logPatterns(f: Filter): string[] | null {
  return f.include.length === 0 || f.include.includes('*') ? null : f.include;
}
