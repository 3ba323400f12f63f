/**
 * The events one tool call made through the router, in order, each with its data and its answer (or
 * error): carried on `agent:tool_result` so that a subscriber (the trace plugin) can record what the
 * agent did and replay it later without the model. Bounded: past the cap the list is left out and
 * `events_omitted` says so, since an emitted event reaches every subscriber and the monitor history.
 */
import { isDaemonError } from '../../daemon/plugin-api.js';

export interface ToolEvent {
  event: string;
  data: Record<string, unknown>;
  result?: unknown;
  error?: { code: string; message: string };
}

/** Most characters of JSON the events of one tool call may take on the emitted result. */
export const TOOL_EVENTS_MAX_CHARS = 256 * 1024;

export class ToolEvents {
  private readonly list: ToolEvent[] = [];

  /** Note the request's outcome when it settles; hands back the same promise. */
  track<T>(event: string, data: Record<string, unknown>, p: Promise<T>): Promise<T> {
    return p.then(
      (result) => {
        this.list.push({ event, data, result });
        return result;
      },
      (e: unknown) => {
        const code = isDaemonError(e) ? e.code : 'HANDLER_ERROR';
        this.list.push({ event, data, error: { code, message: e instanceof Error ? e.message : String(e) } });
        throw e;
      },
    );
  }

  /** `{events}`, or `{events_omitted: true}` when they are too large to emit. */
  view(): { events: ToolEvent[] } | { events_omitted: true } {
    let size = 0;
    for (const e of this.list) {
      size += JSON.stringify(e).length;
      if (size > TOOL_EVENTS_MAX_CHARS) return { events_omitted: true };
    }
    return { events: this.list };
  }
}
