/**
 * Server-Sent Events read with fetch, so the bearer token travels in a header (the browser's
 * EventSource cannot set one, and the token never goes into a URL). Reconnects after `retry` ms
 * with `Last-Event-ID`, as an EventSource would; the gateway then replays what was missed. Works
 * in the browser and in Node (the tests use it too).
 */
import { createParser } from 'eventsource-parser';

export interface StreamFrame {
  kind: 'event' | 'response';
  event: string;
  data: Record<string, unknown>;
  seq?: number;
  timestamp?: number;
  context?: { agent_id?: string } | null;
  subscription?: string | null;
}

export interface SseOptions {
  base: string;
  token: string;
  patterns: string[];
  maxRate?: number;
  /** Resume after this seq (the first connection too). */
  lastEventId?: string;
  onFrame(frame: StreamFrame, id: string | undefined): void;
  /** Connected (true) or lost and retrying (false). */
  onState?(up: boolean, why?: string): void;
  /** Stop retrying after an answer with this status (e.g. 401: a wrong token will not get better). */
  fatal?(status: number, body: string): boolean;
}

export interface SseHandle {
  close(): void;
  /** The id of the last message that had one. */
  readonly lastEventId: string | undefined;
}

export function openStream(o: SseOptions): SseHandle {
  let lastEventId = o.lastEventId;
  let retryMs = 2000;
  let closed = false;
  let abort: AbortController | null = null;
  let ending: string | undefined;
  const q = new URLSearchParams({ patterns: o.patterns.join(',') });
  if (o.maxRate !== undefined) q.set('max_rate', String(o.maxRate));
  const url = `${o.base}/v1/stream?${q}`;

  const once = async (): Promise<boolean> => {
    abort = new AbortController();
    const headers: Record<string, string> = { authorization: `Bearer ${o.token}`, accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    const res = await fetch(url, { headers, signal: abort.signal });
    if (!res.ok || !res.body) {
      const body = await res.text().catch(() => '');
      if (o.fatal?.(res.status, body)) return false;
      throw new Error(`stream answered ${res.status}: ${body.slice(0, 200)}`);
    }
    o.onState?.(true);
    ending = undefined;
    const parser = createParser({
      onEvent: (m) => {
        if (m.id !== undefined && m.id !== '') lastEventId = m.id;
        let frame: StreamFrame;
        try {
          frame = JSON.parse(m.data) as StreamFrame;
        } catch {
          return;
        }
        // The gateway's last frame before it ends the stream: say why it ended.
        if (frame.event === 'gateway:closing')
          ending = frame.data.reason === 'shutdown' ? 'the daemon is shutting down' : 'the gateway stopped';
        o.onFrame(frame, m.id);
      },
      onRetry: (ms) => void (retryMs = ms),
    });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
    return true;
  };

  void (async () => {
    while (!closed) {
      try {
        if (!(await once())) return;
        if (!closed) o.onState?.(false, ending ?? 'stream ended');
      } catch (e) {
        if (closed) return;
        o.onState?.(false, (e as Error).message);
      }
      await new Promise((r) => setTimeout(r, retryMs));
    }
  })();

  return {
    close() {
      closed = true;
      abort?.abort();
    },
    get lastEventId() {
      return lastEventId;
    },
  };
}
