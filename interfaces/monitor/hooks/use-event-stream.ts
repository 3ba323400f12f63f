/**
 * Follow the daemon's event stream through the subscriptions of state/feeds.ts (lifecycle events
 * in full; tokens, a census of everything and the filter's matches as rate-bounded samples with
 * the daemon's counts of the rest), backfill from `monitor:events`, and from then on hand the
 * reducer one batch per flush interval. Frames land in a plain array between flushes (no React
 * work per event); that bound on dispatches is the bound on renders.
 *
 * Across a reconnect the client renews the subscriptions itself; this hook holds the batch back
 * while it asks for the history it missed (or, when the daemon restarted, the new daemon's history)
 * up to where the renewed census begins, so the log has no gap and no duplicate and nothing is
 * counted twice.
 */
import { useEffect, useReducer, useRef, useState } from 'react';
import type { EventClient, EventFrame, Subscription } from '../../../client/index.js';
import type { EventData } from '../../../client/event-types.js';
import {
  initialStream,
  streamReducer,
  type StreamAction,
  type StreamEvent,
  type StreamState,
} from '../state/stream.js';
import { historyPatterns, type Filter } from '../state/patterns.js';
import { CENSUS_PATTERNS, LIFECYCLE_PATTERNS, RATES, TOKEN_PATTERNS, logPatterns, type Via } from '../state/feeds.js';
import type { FrameClock } from '../frame-clock.js';

export type Connection = 'connecting' | 'live' | 'reconnecting';

export interface StreamOptions {
  capacity?: number;
  /** The clock batches are committed on (shared with the polls, so they render together). */
  clock: FrameClock;
  /** Frames held between flushes before the oldest are shed (counted as dropped). */
  maxPending?: number;
  initialFilter?: Filter;
}

export interface EventStream {
  state: StreamState;
  connection: Connection;
  dispatch: (a: StreamAction) => void;
  /** Apply a new filter and fill the log with matching history. */
  setFilter: (f: Filter) => void;
}

const now = (): number => Date.now() / 1000;

export function useEventStream(client: EventClient, opts: StreamOptions): EventStream {
  const capacity = opts.capacity ?? 500;
  const clock = opts.clock;
  const maxPending = opts.maxPending ?? 20_000;
  const [state, dispatch] = useReducer(streamReducer, capacity, (c) => initialStream(c, opts.initialFilter));
  const [connection, setConnection] = useState<Connection>('connecting');
  const pending = useRef<StreamEvent[]>([]);
  const shed = useRef(0);
  const holding = useRef(true);
  /** Where to ask history from after a gap: the older of what was shown and what was counted. */
  const resumeSeq = useRef(0);
  resumeSeq.current = Math.min(state.lastSeq, state.countedSeq);
  const filterRef = useRef(state.filter);
  filterRef.current = state.filter;
  /** The filter's own rate-bounded subscription, changed one at a time (state/feeds.ts). */
  const logSub = useRef<Subscription | null>(null);
  const logChange = useRef<Promise<void>>(Promise.resolve());

  /** Frames of one subscription, tagged with it (the reducer counts only the census). */
  const take =
    (via: Via) =>
    (f: EventFrame): void => {
      const p = pending.current;
      p.push({ ...f, via });
      if (p.length > maxPending) {
        // Shed in bulk (a shift per frame would be quadratic under a flood), but never the daemon's
        // reports: one monitor:skipped stands for thousands of counted events.
        const cut = p.splice(0, p.length - Math.floor(maxPending / 2));
        const reports = cut.filter((x) => x.event === 'monitor:skipped' || x.event === 'monitor:dropped');
        p.unshift(...reports);
        shed.current += cut.length - reports.length;
      }
    };

  /** Subscribe to what the filter needs beyond the census, then drop the previous log subscription. */
  const followFilter = (f: Filter): Promise<void> => {
    logChange.current = logChange.current
      .then(async () => {
        const want = logPatterns(f);
        const have = logSub.current;
        if (have && want && have.patterns.join(' ') === want.join(' ')) return;
        const next = want ? await client.subscribe(want, take('log'), { maxRate: RATES.log }) : null;
        logSub.current = next;
        await have?.unsubscribe();
      })
      .catch(() => undefined);
    return logChange.current;
  };

  useEffect(() => {
    let disposed = false;
    let daemonPid: number | null = null;
    const subs: Subscription[] = [];
    let census: Subscription | null = null;
    // monitor:dropped is addressed to the connection, not to a subscription.
    const onAnyEvent = (f: EventFrame): void => {
      if (f.event === 'monitor:dropped' && !f.subscription) take('connection')(f);
    };

    let quietSince = Date.now();
    /** Commit the batch; returns how many events it stands for (skipped ones included) for the clock. */
    const flush = (): number => {
      if (holding.current) return 0;
      if (shed.current) {
        dispatch({ type: 'shed', count: shed.current, counted: true });
        shed.current = 0;
      }
      const batch = pending.current;
      if (batch.length === 0) {
        // Let the rate decay to zero once a second while nothing arrives.
        if (Date.now() - quietSince >= 1000) {
          quietSince = Date.now();
          dispatch({ type: 'tick', now: now() });
        }
        return 0;
      }
      quietSince = Date.now();
      pending.current = [];
      dispatch({ type: 'events', events: batch, now: now() });
      let represented = batch.length;
      for (const f of batch) if (f.event === 'monitor:skipped') represented += Number(f.data.count) || 0;
      return represented;
    };

    /** Ask for history after `since`, up to where the census begins, and apply it before the held live frames. */
    const sync = async (since: number | undefined): Promise<void> => {
      const health = await client.request('system:health', {}, { timeoutMs: 5000 });
      if (daemonPid !== null && health.pid !== daemonPid) {
        dispatch({ type: 'daemon-restarted', now: now() });
        dispatch({ type: 'notice', text: `daemon restarted (pid ${String(health.pid)})`, now: now() });
        since = undefined;
      }
      daemonPid = health.pid;
      const until = census?.startSeq ?? undefined;
      const data: EventData<'monitor:events'> = { limit: capacity };
      if (since) data.since_seq = since;
      if (until !== undefined) data.until_seq = until;
      const hist = await client.request('monitor:events', data, { timeoutMs: 10_000 });
      if (disposed) return;
      const events = hist.events ?? [];
      dispatch({ type: 'backfill', events, now: now(), ...(until !== undefined ? { until } : {}) });
      // After a gap, say how much of it the history could not give back.
      if (since && hist.truncated && events.length && typeof hist.last_seq === 'number') {
        const missed = events[0].seq - since - 1;
        if (missed > 0)
          dispatch({
            type: 'notice',
            text: `${missed} events from while the connection was down are not shown`,
            now: now(),
          });
      }
    };

    const onDisconnect = (): void => {
      // What arrived before the loss belongs to the old connection (maybe the old daemon): apply it first.
      flush();
      holding.current = true;
      setConnection('reconnecting');
      dispatch({ type: 'notice', text: 'connection to the daemon lost; reconnecting…', now: now() });
    };
    const onReconnect = (): void => {
      // A filter change that failed while the connection was down is made now.
      void followFilter(filterRef.current);
      void sync(resumeSeq.current)
        .catch(() => undefined)
        .finally(() => {
          if (disposed) return;
          holding.current = false;
          setConnection('live');
          dispatch({ type: 'notice', text: 'reconnected', now: now() });
          flush();
        });
    };

    client.on('event', onAnyEvent);
    client.on('disconnect', onDisconnect);
    client.on('reconnect', onReconnect);
    const stopClock = clock.add(flush);

    void (async () => {
      try {
        // Lifecycle and tokens first: the census's start is where history ends, and they must cover everything after it.
        subs.push(await client.subscribe(LIFECYCLE_PATTERNS, take('lifecycle')));
        subs.push(await client.subscribe(TOKEN_PATTERNS, take('tokens'), { maxRate: RATES.tokens }));
        census = await client.subscribe(CENSUS_PATTERNS, take('census'), { maxRate: RATES.census });
        subs.push(census);
        if (disposed) return;
        await followFilter(filterRef.current);
        await sync(undefined);
      } catch {
        /* not connected: the reconnect handler syncs */
      }
      if (disposed) return;
      holding.current = false;
      if (client.connected) setConnection('live');
      flush();
    })();

    return () => {
      disposed = true;
      stopClock();
      client.off('event', onAnyEvent);
      client.off('disconnect', onDisconnect);
      client.off('reconnect', onReconnect);
      for (const sub of subs) void sub.unsubscribe().catch(() => undefined);
      void logChange.current.then(() => logSub.current?.unsubscribe()).catch(() => undefined);
    };
    // `take` and `followFilter` only reach refs and `client`: the first render's are as good as any.
  }, [client, capacity, clock, maxPending]);

  const setFilter = (f: Filter): void => {
    dispatch({ type: 'filter', filter: f });
    void followFilter(f);
    const patterns = historyPatterns(f);
    const data: EventData<'monitor:events'> = { limit: capacity };
    if (patterns) data.patterns = patterns;
    client
      .request('monitor:events', data, { timeoutMs: 10_000 })
      .then((r) => {
        // A newer filter may have replaced this one meanwhile.
        if (filterRef.current === f) dispatch({ type: 'merge', events: r.events ?? [] });
      })
      .catch(() => undefined);
  };

  return { state, connection, dispatch, setFilter };
}
