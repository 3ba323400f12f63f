/**
 * The event stream as a pure reducer. Events arrive in batches (the hook flushes a buffer a few
 * times a second), so every action copies state once per batch, not once per event: that is what
 * keeps the monitor light while the daemon routes thousands of events a second.
 *
 * The state holds the filtered log (bounded), aggregate counts, and what the panels derive from the
 * stream: completions in flight, sandbox execs, agent activity, budget alerts.
 */
import { NO_FILTER, type Filter } from './patterns.js';
import { Aggregates, settleExecs, type AgentActivity, type CompletionRow, type ExecRow } from './aggregates.js';

export type { AgentActivity, CompletionRow, CompletionState, ExecRow } from './aggregates.js';

/** The part of a pushed frame (or a history entry) the monitor uses. */
export interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
  seq: number;
  timestamp: number;
  context?: { agent_id?: string } | null;
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
  lastSeq: number;
  /** Events received since start (before filtering). */
  received: number;
  byNamespace: Record<string, number>;
  /** Events the daemon dropped for us (monitor:dropped), plus any we shed locally. */
  dropped: number;
  /** Arrival samples [unix s, received] for the rate, newest last. */
  samples: Array<[number, number]>;
  perSecond: number;
  completions: Record<string, CompletionRow>;
  completionTotals: { started: number; completed: number; failed: number; cancelled: number; tokens: number };
  tokenSamples: Array<[number, number]>;
  tokensPerSecond: number;
  execs: Record<string, ExecRow>;
  execTotals: { started: number; finished: number; failed: number; timedOut: number };
  agents: Record<string, AgentActivity>;
  alerts: LogEntry[];
  /** Times the daemon's seq went backwards: it restarted under us. */
  restarts: number;
}

export type StreamAction =
  | { type: 'events'; events: StreamEvent[]; now: number }
  /** History from `monitor:events` newer than what we have (connect, reconnect): counted, not rated. */
  | { type: 'backfill'; events: StreamEvent[]; now: number }
  /** Older history matching a new filter: only fills the log. */
  | { type: 'merge'; events: StreamEvent[] }
  | { type: 'filter'; filter: Filter }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'notice'; text: string; now: number }
  | { type: 'daemon-restarted'; now: number }
  | { type: 'shed'; count: number }
  | { type: 'tick'; now: number };

const RATE_WINDOW_S = 5;

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
    dropped: 0,
    samples: [],
    perSecond: 0,
    completions: {},
    completionTotals: { started: 0, completed: 0, failed: 0, cancelled: 0, tokens: 0 },
    tokenSamples: [],
    tokensPerSecond: 0,
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
      const next = applyEvents(s, a.events, a.now);
      return { ...next, samples: [[a.now, next.received]], perSecond: s.perSecond };
    }
    case 'merge':
      return mergeOlder(s, a.events);
    case 'filter': {
      const log = s.log.filter((e) => e.kind !== 'event' || a.filter.match(e.event));
      return { ...s, filter: a.filter, log, frozen: s.frozen ? log : null, missed: 0 };
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
      return { ...s, lastSeq: 0, restarts: s.restarts + 1, execs: settleExecs(s.execs, a.now) };
    case 'shed':
      return { ...s, dropped: s.dropped + a.count, received: s.received + a.count };
    case 'tick':
      return withRates(s, s.samples, s.tokenSamples, a.now);
  }
}

function notice(text: string, now: number, seq: number, epoch: number): LogEntry {
  return { kind: 'notice', seq, event: 'monitor', ts: now, data: { message: text }, epoch };
}

function bounded<T>(list: T[], cap: number): T[] {
  return list.length > cap ? list.slice(list.length - cap) : list;
}

function applyEvents(s: StreamState, events: StreamEvent[], now: number): StreamState {
  if (events.length === 0) return withRates(s, s.samples, s.tokenSamples, now);
  // Log entries are made only for what can stay in the log: under a flood most of a batch never shows.
  const shown: Array<StreamEvent | LogEntry> = [];
  const byNamespace = { ...s.byNamespace };
  const agg = new Aggregates(s, (e) => toEntry(e, s.restarts));
  let lastSeq = s.lastSeq;
  let received = s.received;
  let dropped = s.dropped;
  for (const ev of events) {
    if (ev.event === 'monitor:dropped') {
      const count = Number(ev.data.count) || 0;
      dropped += count;
      received += count;
      shown.push({ kind: 'dropped', seq: ev.seq, event: ev.event, ts: ev.timestamp, data: ev.data, epoch: s.restarts });
      continue;
    }
    if (ev.seq <= lastSeq) continue; // already seen (history overlapping the live stream)
    lastSeq = ev.seq;
    received++;
    const ns = ev.event.slice(0, ev.event.indexOf(':'));
    byNamespace[ns] = (byNamespace[ns] ?? 0) + 1;
    agg.apply(ev);
    if (s.filter.match(ev.event)) shown.push(ev);
  }
  const added = (shown.length > s.capacity ? shown.slice(-s.capacity) : shown).map((e) => ('epoch' in e ? e : toEntry(e, s.restarts)));
  const log = added.length ? bounded(s.log.concat(added), s.capacity) : s.log;
  const samples = [...s.samples, [now, received] as [number, number]];
  const tokenSamples = agg.tokensChanged ? [...s.tokenSamples, [now, agg.totals.tokens] as [number, number]] : s.tokenSamples;
  return withRates(
    {
      ...s,
      log,
      missed: s.frozen ? s.missed + shown.length : 0,
      lastSeq,
      received,
      dropped,
      byNamespace,
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
  const add = events.filter((e) => !have.has(e.seq) && e.seq <= s.lastSeq && s.filter.match(e.event) && e.event !== 'monitor:dropped').map((e) => toEntry(e, s.restarts));
  if (add.length === 0) return s;
  const log = bounded([...s.log, ...add].sort((x, y) => x.epoch - y.epoch || x.seq - y.seq), s.capacity);
  return { ...s, log, frozen: s.frozen ? log : null };
}

function toEntry(ev: StreamEvent, epoch: number): LogEntry {
  const agentId = ev.context?.agent_id ?? (typeof ev.data.agent_id === 'string' ? ev.data.agent_id : undefined);
  return { kind: 'event', seq: ev.seq, event: ev.event, ts: ev.timestamp, data: ev.data, epoch, ...(agentId ? { agentId } : {}) };
}

function rate(samples: Array<[number, number]>, now: number): { kept: Array<[number, number]>; perSecond: number } {
  const kept = samples.filter(([t]) => t >= now - RATE_WINDOW_S);
  if (kept.length === 0) return { kept, perSecond: 0 };
  const first = samples[samples.indexOf(kept[0]) - 1] ?? kept[0];
  const last = kept[kept.length - 1];
  const dt = Math.max(now - first[0], 1);
  return { kept: kept.length > 64 ? kept.slice(-64) : kept, perSecond: (last[1] - first[1]) / dt };
}

function withRates(s: StreamState, samples: Array<[number, number]>, tokenSamples: Array<[number, number]>, now: number): StreamState {
  const r = rate(samples, now);
  const t = rate(tokenSamples, now);
  // Keep the sample just before the window as the baseline of the next computation.
  const keep = (all: Array<[number, number]>, kept: Array<[number, number]>): Array<[number, number]> => {
    const i = all.indexOf(kept[0]);
    return i > 0 ? [all[i - 1], ...kept] : kept.length ? kept : all.slice(-1);
  };
  const perSecond = Math.round(r.perSecond * 10) / 10;
  const tokensPerSecond = Math.round(t.perSecond * 10) / 10;
  if (perSecond === s.perSecond && tokensPerSecond === s.tokensPerSecond && samples === s.samples && tokenSamples === s.tokenSamples) return s;
  return { ...s, samples: keep(samples, r.kept), tokenSamples: keep(tokenSamples, t.kept), perSecond, tokensPerSecond };
}

