/**
 * The live stream, as the TUI follows it (interfaces/monitor/state/feeds.ts) but over SSE: one
 * stream per subscription — lifecycle (every event the panels derive from, plus workflow:*),
 * tokens and census rate-bounded, and the log filter's own while one is set — fed to the TUI's
 * own reducer (state/stream.ts) in batches four times a second. The census stream's first message
 * says where it starts; the history up to there is backfilled from monitor:events. A dropped
 * stream reconnects with Last-Event-ID, and the gateway replays what it missed.
 */
import { useEffect, useReducer, useRef, useState } from 'react';
import {
  CENSUS_PATTERNS,
  LIFECYCLE_PATTERNS,
  RATES,
  TOKEN_PATTERNS,
  logPatterns,
  type Via,
} from '../monitor/state/feeds.js';
import type { Filter } from '../monitor/state/patterns.js';
import { initialStream, streamReducer, type StreamEvent } from '../monitor/state/stream.js';
import type { Api } from './api.js';
import { openStream, type SseHandle, type StreamFrame } from './sse-client.js';

export interface Changes {
  /** Bumped when the graph changed (kg:changed). */
  kg: number;
  /** Bumped on any workflow event; `runs` names the runs concerned. */
  workflow: number;
  runs: string[];
}

export function useFeeds(api: Api, filter: Filter) {
  const [state, dispatch] = useReducer(streamReducer, filter, (f) => initialStream(500, f));
  const [up, setUp] = useState<Record<string, boolean>>({});
  const [changes, setChanges] = useState<Changes>({ kg: 0, workflow: 0, runs: [] });
  const buffer = useRef<StreamEvent[]>([]);
  const pending = useRef({ kg: false, workflow: false, runs: new Set<string>() });

  useEffect(() => {
    const flush = setInterval(() => {
      const now = Date.now() / 1000;
      const events = buffer.current.splice(0);
      dispatch(events.length ? { type: 'events', events, now } : { type: 'tick', now });
      const p = pending.current;
      if (p.kg || p.workflow) {
        const runs = [...p.runs];
        setChanges((c) => ({ kg: c.kg + (p.kg ? 1 : 0), workflow: c.workflow + (p.workflow ? 1 : 0), runs }));
        pending.current = { kg: false, workflow: false, runs: new Set() };
      }
    }, 250);
    return () => clearInterval(flush);
  }, []);

  useEffect(() => {
    const streams: SseHandle[] = [];
    const open = (via: Via, patterns: string[], maxRate?: number) => {
      const h = openStream({
        base: api.base,
        token: api.token,
        patterns,
        ...(maxRate ? { maxRate } : {}),
        fatal: (status) => status === 401,
        onState: (isUp) => setUp((u) => ({ ...u, [via]: isUp })),
        onFrame: (f: StreamFrame) => {
          if (f.kind === 'response') {
            // The census stream's start: backfill the history up to it, once per (re)connection.
            if (via === 'census' && typeof f.data.seq === 'number' && h.lastEventId === undefined)
              void backfill(f.data.seq);
            return;
          }
          if (f.event === 'kg:changed') pending.current.kg = true;
          if (f.event.startsWith('workflow:')) {
            pending.current.workflow = true;
            if (typeof f.data.run_id === 'string') pending.current.runs.add(f.data.run_id);
          }
          buffer.current.push({
            event: f.event,
            data: f.data,
            seq: f.seq ?? 0,
            timestamp: f.timestamp ?? Date.now() / 1000,
            context: f.context ?? null,
            via: f.subscription === null ? 'connection' : via,
          });
        },
      });
      streams.push(h);
    };
    const backfill = async (until: number) => {
      try {
        const h = await api.request<{ events: StreamEvent[] }>('monitor:events', { until_seq: until, limit: 500 });
        dispatch({ type: 'backfill', events: h.events, now: Date.now() / 1000, until });
      } catch {
        /* the live stream goes on without its history */
      }
    };
    open('lifecycle', [...LIFECYCLE_PATTERNS, 'workflow:*']);
    open('tokens', TOKEN_PATTERNS, RATES.tokens);
    open('census', CENSUS_PATTERNS, RATES.census);
    return () => streams.forEach((s) => s.close());
  }, [api]);

  // The log filter's own subscription, while a filter is set.
  useEffect(() => {
    dispatch({ type: 'filter', filter });
    const patterns = logPatterns(filter);
    // What the old filter hid comes back from the history (an empty filter: everything).
    {
      void api
        .request<{ events: StreamEvent[] }>('monitor:events', {
          ...(filter.include.length ? { patterns: filter.include } : {}),
          limit: 500,
        })
        .then((h) => dispatch({ type: 'merge', events: h.events }))
        .catch(() => undefined);
    }
    if (!patterns) return;
    const h = openStream({
      base: api.base,
      token: api.token,
      patterns,
      maxRate: RATES.log,
      fatal: (status) => status === 401,
      onFrame: (f) => {
        if (f.kind === 'event')
          buffer.current.push({
            event: f.event,
            data: f.data,
            seq: f.seq ?? 0,
            timestamp: f.timestamp ?? 0,
            context: f.context ?? null,
            via: 'log',
          });
      },
    });
    return () => h.close();
  }, [api, filter]);

  return { state, dispatch, up, changes };
}
