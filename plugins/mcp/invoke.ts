/**
 * The daemon side of `daemon-control mcp`'s tool calls. Each call runs under a causality root named
 * by the MCP process (`call_id`), so every event the work causes (sandbox output, a turn's tokens
 * and tool calls, a workflow's steps) carries `context.root_id = call_id` and the MCP process can
 * turn them into progress notifications for that call alone. `mcp:abort` cancels a call: its nested
 * request is aborted (a sandbox run is killed) and work that lives on past a request (an agent
 * turn, a completion, a workflow run) is cancelled through its own event.
 */
import { DaemonError, type CallContext, type EventContext, type PluginContext } from '../../daemon/plugin-api.js';

type Request = PluginContext['request'];

/** How to cancel work that outlives its request: the ids it is given up front, and the event that cancels it. */
interface CancelHook {
  /** Give the work an id of ours when the caller gave none. */
  prepare(data: Record<string, unknown>, callId: string): Record<string, unknown>;
  cancel(data: Record<string, unknown>): [event: string, data: Record<string, unknown>] | null;
}

const CANCEL_HOOKS: Record<string, CancelHook> = {
  'agent:send': {
    prepare: (d, id) => ({ ...d, turn_id: d.turn_id ?? `mcp-${id}` }),
    cancel: (d) => ['agent:cancel', { agent_id: d.agent_id, turn_id: d.turn_id }],
  },
  'completion:request': {
    prepare: (d, id) => ({ ...d, request_id: d.request_id ?? `mcp-${id}` }),
    cancel: (d) => ['completion:cancel', { request_id: d.request_id }],
  },
  'workflow:start': {
    prepare: (d, id) => ({ ...d, run_id: d.run_id ?? `mcp-${id}` }),
    cancel: (d) => ['workflow:cancel', { run_id: d.run_id }],
  },
};

interface Running {
  ac: AbortController;
  event: string;
  data: Record<string, unknown>;
}

export class Invoker {
  private readonly running = new Map<string, Running>();

  constructor(private readonly request: Request) {}

  get inFlight(): number {
    return this.running.size;
  }

  async invoke(
    input: { event: string; data: Record<string, unknown>; call_id: string },
    call: CallContext,
  ): Promise<unknown> {
    if (input.event.startsWith('mcp:invoke') || input.event === 'mcp:abort')
      throw new DaemonError('INVALID_DATA', `${input.event} cannot be invoked through mcp:invoke`);
    if (this.running.has(input.call_id))
      throw new DaemonError('CONFLICT', `call ${input.call_id} is already running`, { call_id: input.call_id });
    const hook = CANCEL_HOOKS[input.event];
    const data = hook ? hook.prepare(input.data, input.call_id) : input.data;
    const ac = new AbortController();
    const entry: Running = { ac, event: input.event, data };
    this.running.set(input.call_id, entry);
    // The MCP process went away: its calls are abandoned, as if cancelled.
    const onGone = (): void => void this.abort(input.call_id, 'the MCP client disconnected');
    call.signal.addEventListener('abort', onGone, { once: true });
    const root: EventContext = {
      id: input.call_id,
      parent_id: call.context.id,
      root_id: input.call_id,
      depth: call.context.depth,
    };
    try {
      return await this.request(input.event, data, { context: root, timeoutMs: call.remainingMs(), signal: ac.signal });
    } finally {
      call.signal.removeEventListener('abort', onGone);
      this.running.delete(input.call_id);
    }
  }

  /** Cancel a running call; false when it is not (or no longer) running. */
  abort(callId: string, why = 'cancelled by the MCP client'): boolean {
    const r = this.running.get(callId);
    if (!r) return false;
    this.running.delete(callId);
    r.ac.abort(new DaemonError('CANCELLED', `${r.event}: ${why}`, { call_id: callId }));
    const c = CANCEL_HOOKS[r.event]?.cancel(r.data);
    if (c) void this.request(c[0], c[1], { timeoutMs: 10_000 }).catch(() => undefined);
    return true;
  }

  abortAll(): void {
    for (const id of [...this.running.keys()]) this.abort(id, 'the mcp plugin is stopping');
  }
}
