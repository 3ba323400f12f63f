/**
 * The wire protocol, shared by the daemon and every client: newline-delimited JSON over a Unix
 * socket, the KSI-compatible envelope. See DESIGN.md "Wire protocol".
 */
import type { ErrorPayload } from './errors.js';

export type CorrelationId = string | number;

/** Client → daemon. */
export interface RequestFrame {
  event: string;
  data?: Record<string, unknown>;
  correlation_id?: CorrelationId;
  timeout_ms?: number;
}

/** Daemon → client, one per request. Exactly one of `data` and `error` is present. */
export interface ResponseFrame {
  kind: 'response';
  event: string | null;
  correlation_id?: CorrelationId | null;
  data?: Record<string, unknown>;
  error?: ErrorPayload;
  timestamp: number;
}

/** Causality carried by every request and emitted event. */
export interface EventContext {
  id: string;
  parent_id: string | null;
  root_id: string;
  depth: number;
  agent_id?: string;
  /** The federation node an event came from, when it crossed the bridge. */
  origin?: string;
  /**
   * The workflow run this work belongs to (set by the workflow plugin, inherited by everything the
   * run causes): the budget scope `workflow` its model calls are charged to.
   */
  workflow_id?: string;
}

/** Daemon → subscribed client. */
export interface EventFrame {
  kind: 'event';
  event: string;
  data: Record<string, unknown>;
  seq: number;
  timestamp: number;
  subscription: string;
  context?: EventContext;
}

/**
 * The data of a `monitor:skipped` frame: what a subscription made with `max_rate` was not sent
 * since the previous one, by event name (at most 200 names; the rest under `other`).
 */
export interface SkippedData {
  subscription: string;
  count: number;
  by_event: Record<string, number>;
  first_seq: number;
  last_seq: number;
}

export type ServerFrame = ResponseFrame | EventFrame;

export const EVENT_NAME_RE = /^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)+$/;
/** A subscription pattern: `*`, or segments where the last may be `*` (one segment) or `**` (any). */
export const PATTERN_RE = /^(\*|[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)*(:(\*\*?|[a-z][a-z0-9_]*)))$/;

export const DEFAULT_TIMEOUT_MS = 30_000;
export const MAX_TIMEOUT_MS = 24 * 3600_000;
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

export const nowSeconds = (): number => Date.now() / 1000;
