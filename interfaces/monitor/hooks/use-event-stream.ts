/**
 * Follow the daemon's event stream: subscribe to everything, backfill from `monitor:events`, and
 * from then on hand the reducer one batch per flush interval. Frames land in a plain array between
 * flushes (no React work per event); that bound on dispatches is the bound on renders.
 *
 * Across a reconnect the client renews the subscription itself; this hook holds the batch back
 * while it asks for the history it missed (or, when the daemon restarted, the new daemon's history),
 * so the log has no gap and no duplicate.
 */
import { useEffect, useReducer, useRef, useState } from 'react';
import type { EventClient, EventFrame } from '../../../client/index.js';
import { initialStream, streamReducer, type StreamAction, type StreamEvent, type StreamState } from '../state/stream.js';
import { historyPatterns, type Filter } from '../state/patterns.js';
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
  const lastSeq = useRef(0);
  lastSeq.current = state.lastSeq;
  const filterRef = useRef(state.filter);
  filterRef.current = state.filter;

  useEffect(() => {
    let disposed = false;
    let daemonPid: unknown = null;
    let sub: { unsubscribe(): Promise<void> } | null = null;

    const take = (f: EventFrame): void => {
      const p = pending.current;
      p.push(f);
      if (p.length > maxPending) {
        // Shed in bulk (a shift per frame would be quadratic under a flood).
        const n = p.length - Math.floor(maxPending / 2);
        p.splice(0, n);
        shed.current += n;
      }
    };
    // monitor:dropped is addressed to the connection, not to a subscription.
    const onAnyEvent = (f: EventFrame): void => {
      if (f.event === 'monitor:dropped' && !f.subscription) take(f);
    };

    let quietSince = Date.now();
    const flush = (): number => {
      if (holding.current) return 0;
      if (shed.current) {
        dispatch({ type: 'shed', count: shed.current });
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
      return batch.length;
    };

    /** Ask for history after `since` and apply it before the held live frames. */
    const sync = async (since: number | undefined): Promise<void> => {
      const health = await client.request<{ pid?: unknown }>('system:health', {}, { timeoutMs: 5000 });
      if (daemonPid !== null && health.pid !== daemonPid) {
        dispatch({ type: 'daemon-restarted', now: now() });
        dispatch({ type: 'notice', text: `daemon restarted (pid ${String(health.pid)})`, now: now() });
        since = undefined;
      }
      daemonPid = health.pid;
      const data: Record<string, unknown> = { limit: capacity };
      if (since) data.since_seq = since;
      const hist = await client.request<{ events: StreamEvent[]; last_seq?: number; truncated?: boolean }>('monitor:events', data, { timeoutMs: 10_000 });
      if (disposed) return;
      const events = hist.events ?? [];
      dispatch({ type: 'backfill', events, now: now() });
      // After a gap, say how much of it the history could not give back.
      if (since && hist.truncated && events.length && typeof hist.last_seq === 'number') {
        const missed = events[0].seq - since - 1;
        if (missed > 0) dispatch({ type: 'notice', text: `${missed} events from while the connection was down are not shown`, now: now() });
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
      void sync(lastSeq.current)
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
        sub = await client.subscribe('*', take);
        if (disposed) return void sub.unsubscribe();
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
      void sub?.unsubscribe().catch(() => undefined);
    };
  }, [client, capacity, clock, maxPending]);

  const setFilter = (f: Filter): void => {
    dispatch({ type: 'filter', filter: f });
    const patterns = historyPatterns(f);
    const data: Record<string, unknown> = { limit: capacity };
    if (patterns) data.patterns = patterns;
    client
      .request<{ events: StreamEvent[] }>('monitor:events', data, { timeoutMs: 10_000 })
      .then((r) => {
        // A newer filter may have replaced this one meanwhile.
        if (filterRef.current === f) dispatch({ type: 'merge', events: r.events ?? [] });
      })
      .catch(() => undefined);
  };

  return { state, connection, dispatch, setFilter };
}
