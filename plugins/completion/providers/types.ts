/** The one interface every LLM provider implements; the service knows nothing else about them. */
import type { DaemonError } from '../../../daemon/plugin-api.js';
import type { TokenUsage } from '../../../client/usage.js';

export interface ProviderMessage {
  role: 'user' | 'assistant';
  content: string | Array<Record<string, unknown>>;
}

export interface ProviderRequest {
  model: string;
  max_tokens: number;
  messages: ProviderMessage[];
  system?: string | Array<Record<string, unknown>>;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  stop_sequences?: string[];
  tools?: Array<Record<string, unknown>>;
  tool_choice?: Record<string, unknown>;
  thinking?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

/** Usage in the Messages API's field names, whatever the provider. */
export type ProviderUsage = TokenUsage;

export interface ProviderResult {
  model: string;
  content: Array<Record<string, unknown>>;
  text: string;
  stop_reason: string | null;
  usage: ProviderUsage;
  /** The provider's own id for the call (request-id header), for support tickets. */
  provider_request_id?: string | null;
}

export interface CallHooks {
  signal: AbortSignal;
  /** A text delta arrived (only called when the caller wants tokens). */
  onText?: (delta: string) => void;
  /** The provider reported input usage at the start: the input is billed from here on. */
  onStart?: (usage: ProviderUsage) => void;
}

export interface ProviderStatus {
  configured: boolean;
  /** Why not, and how to fix it. */
  reason?: string;
}

export interface Provider {
  readonly name: string;
  status(): ProviderStatus;
  complete(req: ProviderRequest, hooks: CallHooks): Promise<ProviderResult>;
  /** Exact input token count, when the provider can tell. */
  countTokens?(req: ProviderRequest, signal: AbortSignal): Promise<number>;
  /** Map a thrown error to the catalogue. */
  mapError(err: unknown): DaemonError;
}
