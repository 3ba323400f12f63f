/**
 * Causality contexts and the per-request view handed to handlers. Ids are a boot prefix plus a
 * counter: unique across restarts, and cheaper than a UUID on the hot path.
 */
import { randomBytes } from 'node:crypto';
import type { EventContext } from '../client/protocol.js';
import type { CallContext, EmitOptions, RequestOptions } from './plugin-api.js';

const BOOT = randomBytes(4).toString('hex');
let counter = 0;

export const newId = (): string => `${BOOT}-${(++counter).toString(36)}`;

/** A root context for work that starts here (a socket request, a timer, a restart). */
export function rootContext(agentId?: string): EventContext {
  const id = newId();
  const ctx: EventContext = { id, parent_id: null, root_id: id, depth: 0 };
  if (agentId !== undefined) ctx.agent_id = agentId;
  return ctx;
}

/** A context for work caused by `parent`: one level deeper, same root, agent inherited unless given. */
export function childContext(parent: EventContext, agentId?: string): EventContext {
  const ctx: EventContext = { id: newId(), parent_id: parent.id, root_id: parent.root_id, depth: parent.depth + 1 };
  const agent = agentId ?? parent.agent_id;
  if (agent !== undefined) ctx.agent_id = agent;
  if (parent.origin !== undefined) ctx.origin = parent.origin;
  if (parent.workflow_id !== undefined) ctx.workflow_id = parent.workflow_id;
  return ctx;
}

/** What a CallContext needs from the router, kept narrow so the two don't import each other. */
export interface CallHost {
  request(
    event: string,
    data: Record<string, unknown>,
    parent: EventContext,
    deadline: number,
    opts: RequestOptions,
    connectionId: string | null,
  ): Promise<unknown>;
  emit(event: string, data: Record<string, unknown>, parent: EventContext, opts?: EmitOptions): void;
}

export class Call implements CallContext {
  private controller: AbortController | null = null;
  private abortReason: unknown = undefined;

  constructor(
    private readonly host: CallHost,
    readonly event: string,
    readonly context: EventContext,
    readonly deadline: number,
    readonly connectionId: string | null,
  ) {}

  /** Created on first use: most handlers never look, and the hot path should not pay for it. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  remainingMs(): number {
    return Math.max(0, this.deadline - Date.now());
  }

  request<T = Record<string, unknown>>(
    event: string,
    data: Record<string, unknown> = {},
    opts: RequestOptions = {},
  ): Promise<T> {
    return this.host.request(event, data, this.context, this.deadline, opts, this.connectionId) as Promise<T>;
  }

  emit(event: string, data: Record<string, unknown>, opts?: EmitOptions): void {
    this.host.emit(event, data, opts?.context ?? this.context, opts);
  }
}
