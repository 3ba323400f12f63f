/**
 * The event stream as a pure reducer. Events arrive in batches (the hook flushes a buffer a few
 * times a second), so every action copies state once per batch, not once per event: that is what
 * keeps the monitor light while the daemon routes thousands of events a second.
 *
 * The state holds the filtered log (bounded), aggregate counts, and what the panels derive from the
 * stream: completions in flight, sandbox execs, agent activity, budget alerts.
 */
import type { SkippedData } from '../../../client/protocol.js';
import { NO_FILTER, type Filter } from './patterns.js';
import {
  Aggregates,
  settleExecs,
  type AgentActivity,
  type CompletionRow,
  type ExecRow,
  type TokenEstimate,
} from './aggregates.js';
import { CensusBatch, reportNameMatches, type CurrentEvent } from './census.js';
import type { Via } from './feeds.js';

export type { AgentActivity, CompletionRow, CompletionState, ExecRow } from './aggregates.js';

/** The part of a pushed frame (or a history entry) the monitor uses. */
export interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
  seq: number;
  timestamp: number;
  context?: { agent_id?: string } | null;
  /** The subscription it came through (state/feeds.ts); none: history, or one stream of everything. */
  via?: Via;
}

export interface LogEntry {
  kind: 'event' | 'dropped' | 'notice';
  seq: number;
  event: string;
  /** Unix seconds. */
  ts: number;
  data: Record<string, unknown>;
  agentId?: string;
  /** Which daemon run (restarts seen so far): seq starts over in a new one. */
  epoch: number;
}

export interface StreamState {
  capacity: number;
  /** Entries matching the filter, oldest first, at most `capacity`. */
  log: LogEntry[];
  /** While paused: the log as it was when paused (what the screen shows). */
  frozen: LogEntry[] | null;
  /** Matching entries that arrived while paused. */
  missed: number;
  filter: Filter;
  /** The newest event shown or applied (frames at or below it are duplicates). */
  lastSeq: number;
  /** Events the daemon emitted since start (before filtering), received or counted as skipped. */
  received: number;
  byNamespace: Record<string, number>;
  /** The newest event the counts account for. */
  countedSeq: number;
  /** The event whose frames are arriving (state/census.ts). */
  current: CurrentEvent | null;
  /** Events shown since the last census report that the census itself skipped, by name. */
  orphans: Record<string, number>;
  /** Events matching the filter that the log never got (the daemon sent only a sample), since the filter was set. */
  skipped: number;
  /** The log is a sample right now (something matching was skipped in the last seconds). */
  sampling: boolean;
  sampledUntil: number;
  /** Events the daemon dropped for us (monitor:dropped), plus any we shed locally. */
  dropped: number;
  /** Arrival samples [unix s, received] for the rate, newest last. */
  samples: Array<[number, number]>;
  perSecond: number;
  completions: Record<string, CompletionRow>;
  completionTotals: { started: number; completed: number; failed: number; cancelled: number; tokens: number };
  tokenSamples: Array<[number, number]>;
  tokensPerSecond: number;
  tokenEstimate: TokenEstimate;
  execs: Record<string, ExecRow>;
  execTotals: { started: number; finished: number; failed: number; timedOut: number };
  agents: Record<string, AgentActivity>;
  alerts: LogEntry[];
  /** Times the daemon's seq went backwards: it restarted under us. */
  restarts: number;
}

export type StreamAction =
  | { type: 'events'; events: StreamEvent[]; now: number }
  /**
   * History from `monitor:events` newer than what we have (connect, reconnect): counted, not
   * rated. `until`: where the census subscription began; it counts what comes after.
   */
  | { type: 'backfill'; events: StreamEvent[]; now: number; until?: number }
  /** Older history matching a new filter: only fills the log. */
  | { type: 'merge'; events: StreamEvent[] }
  | { type: 'filter'; filter: Filter }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'notice'; text: string; now: number }
  | { type: 'daemon-restarted'; now: number }
  /** Frames the monitor itself threw away under a flood; `counted`: a census counts their events anyway. */
  | { type: 'shed'; count: number; counted?: boolean }
  | { type: 'tick'; now: number };

const RATE_WINDOW_S = 5;
/** How long the log title says "sampled" after the last report of a gap (reports come every second). */
const SAMPLED_HOLD_S = 2.5;

export function initialStream(capacity = 500, filter: Filter = NO_FILTER): StreamState {
  return {
    capacity,
    log: [],
    frozen: null,
    missed: 0,
    filter,
    lastSeq: 0,
    received: 0,
    byNamespace: {},
    countedSeq: 0,
    current: null,
    orphans: {},
    skipped: 0,
    sampling: false,
    sampledUntil: 0,
    dropped: 0,
    samples: [],
    perSecond: 0,
    completions: {},
    completionTotals: { started: 0, completed: 0, failed: 0, cancelled: 0, tokens: 0 },
    tokenSamples: [],
    tokensPerSecond: 0,
    tokenEstimate: { events: 0, tokens: 0, unattributed: 0 },
    execs: {},
    execTotals: { started: 0, finished: 0, failed: 0, timedOut: 0 },
    agents: {},
    alerts: [],
    restarts: 0,
  };
}

/** What the log panel shows: the frozen log while paused, else the live one. */
export const visibleLog = (s: StreamState): LogEntry[] => s.frozen ?? s.log;

export function streamReducer(s: StreamState, a: StreamAction): StreamState {
  switch (a.type) {
    case 'events':
      return applyEvents(s, a.events, a.now);
    case 'backfill': {
      // History is not arrival rate: restart the samples after it.
      const next = applyEvents(s, a.events, a.now, { until: a.until ?? Infinity });
      return { ...next, samples: [[a.now, next.received]], perSecond: s.perSecond };
    }
    case 'merge':
      return mergeOlder(s, a.events);
    case 'filter': {
      const log = s.log.filter((e) => e.kind !== 'event' || a.filter.match(e.event));
      return {
        ...s,
        filter: a.filter,
        log,
        frozen: s.frozen ? log : null,
        missed: 0,
        skipped: 0,
        sampling: false,
        sampledUntil: 0,
      };
    }
    case 'pause':
      return s.frozen ? s : { ...s, frozen: s.log, missed: 0 };
    case 'resume':
      return s.frozen ? { ...s, frozen: null, missed: 0 } : s;
    case 'notice':
      return { ...s, log: bounded([...s.log, notice(a.text, a.now, s.lastSeq, s.restarts)], s.capacity) };
    case 'daemon-restarted':
      // The new daemon counts seq from its own start; forget ours so its events are not taken for duplicates.
      // Its completions are journaled and report back; its execs were killed with it.
      return {
        ...s,
        lastSeq: 0,
        countedSeq: 0,
        current: null,
        orphans: {},
        restarts: s.restarts + 1,
        execs: settleExecs(s.execs, a.now),
      };
    case 'shed':
      return { ...s, dropped: s.dropped + a.count, received: s.received + (a.counted ? 0 : a.count) };
    case 'tick': {
      const next = withRates(s, s.samples, s.tokenSamples, a.now);
      return next.sampling && a.now >= next.sampledUntil ? { ...next, sampling: false } : next;
    }
  }
}

function notice(text: string, now: number, seq: number, epoch: number): LogEntry {
  return { kind: 'notice', seq, event: 'monitor', ts: now, data: { message: text }, epoch };
}

function bounded<T>(list: T[], cap: number): T[] {
  return list.length > cap ? list.slice(list.length - cap) : list;
}

/**
 * Apply a batch of frames (or, with `history`, entries of `monitor:events`). Each event is shown
 * and fed to the panels once, by its first frame; it is counted by its census frame, by a census
 * report, or as history up to where the census began (state/census.ts).
 */
function applyEvents(s: StreamState, events: StreamEvent[], now: number, history?: { until: number }): StreamState {
  if (events.length === 0 && !history) return withRates(s, s.samples, s.tokenSamples, now);
  // Log entries are made only for what can stay in the log: under a flood most of a batch never shows.
  const shown: Array<StreamEvent | LogEntry> = [];
  const agg = new Aggregates(s, (e) => toEntry(e, s.restarts));
  const census = new CensusBatch(s);
  const matches = (name: string): boolean => reportNameMatches(name, s.filter);
  let lastSeq = s.lastSeq;
  let dropped = s.dropped;
  let gap = 0;
  let otherDropped = 0;
  for (const ev of events) {
    if (ev.event === 'monitor:dropped') {
      const count = Number(ev.data.count) || 0;
      dropped += count;
      // One stream of everything: what it lost is part of what was emitted. With a census, the lost
      // frames are mostly of events its skips count already (all but its own few frames).
      if (ev.via === undefined) otherDropped += count;
      shown.push({ kind: 'dropped', seq: ev.seq, event: ev.event, ts: ev.timestamp, data: ev.data, epoch: s.restarts });
      continue;
    }
    const via = ev.via;
    if (ev.event === 'monitor:skipped') {
      const d = ev.data as unknown as SkippedData;
      if (via === 'census' || via === undefined) gap += census.skipped(d, matches);
      else if (via === 'tokens') agg.skippedTokens(Number(d.count) || 0);
      // The log subscription's own skips say nothing the census does not.
      continue;
    }
    const cur = census.current;
    const isNew = ev.seq > lastSeq;
    if (isNew) {
      const c = census.begin(ev.seq, ev.event, via === undefined);
      lastSeq = ev.seq;
      // Token counts come from the token subscription only, so that its skipped count scales them right.
      const tokens = via === undefined || via === 'tokens';
      agg.apply(ev, tokens);
      c.tokens = tokens;
      if (s.filter.match(ev.event)) shown.push(ev);
    } else if (via === 'tokens' && cur?.seq === ev.seq && !cur.tokens) {
      // A second frame of the event in progress (another subscription matched it first).
      agg.apply(ev, true, true);
      cur.tokens = true;
    }
    // Counted whether or not it was shown already: by seq, so a duplicate never counts twice.
    if (via === 'census' || (via === undefined && (!history || ev.seq <= history.until)))
      census.count(ev.seq, ev.event);
  }
  if (history) census.reset(Math.max(census.countedSeq, Number.isFinite(history.until) ? history.until : lastSeq));
  census.received += otherDropped;
  const added = (shown.length > s.capacity ? shown.slice(-s.capacity) : shown).map((e) =>
    'epoch' in e ? e : toEntry(e, s.restarts),
  );
  const log = added.length ? bounded(s.log.concat(added), s.capacity) : s.log;
  const counts = census.result();
  const samples = [...s.samples, [now, counts.received] as [number, number]];
  const tokenSamples = agg.tokensChanged
    ? [...s.tokenSamples, [now, agg.totals.tokens] as [number, number]]
    : s.tokenSamples;
  const sampledUntil = gap > 0 ? now + SAMPLED_HOLD_S : s.sampledUntil;
  return withRates(
    {
      ...s,
      log,
      missed: s.frozen ? s.missed + shown.length + gap : 0,
      lastSeq,
      dropped,
      ...counts,
      skipped: s.skipped + gap,
      sampledUntil,
      sampling: now < sampledUntil,
      ...agg.result(),
    },
    samples,
    tokenSamples,
    now,
  );
}

/**
 * History matching a new filter (asked for when it changes): the union with the log by seq, so
 * events the old filter hid come back. Only the current daemon run's history is asked for.
 */
function mergeOlder(s: StreamState, events: StreamEvent[]): StreamState {
  const have = new Set(s.log.filter((e) => e.epoch === s.restarts && e.kind === 'event').map((e) => e.seq));
  const add = events
    .filter((e) => !have.has(e.seq) && e.seq <= s.lastSeq && s.filter.match(e.event) && e.event !== 'monitor:dropped')
    .map((e) => toEntry(e, s.restarts));
  if (add.length === 0) return s;
  const log = bounded(
    [...s.log, ...add].sort((x, y) => x.epoch - y.epoch || x.seq - y.seq),
    s.capacity,
  );
  return { ...s, log, frozen: s.frozen ? log : null };
}

function toEntry(ev: StreamEvent, epoch: number): LogEntry {
  const agentId = ev.context?.agent_id ?? (typeof ev.data.agent_id === 'string' ? ev.data.agent_id : undefined);
  return {
    kind: 'event',
    seq: ev.seq,
    event: ev.event,
    ts: ev.timestamp,
    data: ev.data,
    epoch,
    ...(agentId ? { agentId } : {}),
  };
}

function rate(samples: Array<[number, number]>, now: number): { kept: Array<[number, number]>; perSecond: number } {
  const kept = samples.filter(([t]) => t >= now - RATE_WINDOW_S);
  if (kept.length === 0) return { kept, perSecond: 0 };
  const first = samples[samples.indexOf(kept[0]) - 1] ?? kept[0];
  const last = kept[kept.length - 1];
  const dt = Math.max(now - first[0], 1);
  return { kept: kept.length > 64 ? kept.slice(-64) : kept, perSecond: (last[1] - first[1]) / dt };
}

function withRates(
  s: StreamState,
  samples: Array<[number, number]>,
  tokenSamples: Array<[number, number]>,
  now: number,
): StreamState {
  const r = rate(samples, now);
  const t = rate(tokenSamples, now);
  // Keep the sample just before the window as the baseline of the next computation.
  const keep = (all: Array<[number, number]>, kept: Array<[number, number]>): Array<[number, number]> => {
    const i = all.indexOf(kept[0]);
    return i > 0 ? [all[i - 1], ...kept] : kept.length ? kept : all.slice(-1);
  };
  const perSecond = Math.round(r.perSecond * 10) / 10;
  const tokensPerSecond = Math.round(t.perSecond * 10) / 10;
  if (
    perSecond === s.perSecond &&
    tokensPerSecond === s.tokensPerSecond &&
    samples === s.samples &&
    tokenSamples === s.tokenSamples
  )
    return s;
  return { ...s, samples: keep(samples, r.kept), tokenSamples: keep(tokenSamples, t.kept), perSecond, tokensPerSecond };
}
