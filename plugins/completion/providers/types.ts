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
  /** False when the provider reported no usage (a server that ignores include_usage): the caller estimates it. */
  usage_reported?: boolean;
}

export interface CallHooks {
  signal: AbortSignal;
  /** A text delta arrived (only called when the caller wants tokens). */
  onText?: (delta: string) => void;
  /**
   * The provider started answering: the input is billed from here on. With the usage when the
   * provider tells it at the start (Anthropic does); null when it does not (chat completions report
   * usage only at the end), and the caller counts the input it reserved.
   */
  onStart?: (usage: ProviderUsage | null) => void;
}

export interface ProviderStatus {
  configured: boolean;
  /** Why not, and how to fix it. */
  reason?: string;
}

export interface Provider {
  /** The prefix of its models (`<name>/<model>`); `anthropic` for unprefixed names. */
  readonly name: string;
  /** Which wire format it speaks: anthropic (Messages API) or openai (chat completions). */
  readonly kind: string;
  /** Where it is, for status answers (never a key). */
  readonly baseURL: string | null;
  status(): ProviderStatus;
  complete(req: ProviderRequest, hooks: CallHooks): Promise<ProviderResult>;
  /** Exact input token count, when the provider can tell. */
  countTokens?(req: ProviderRequest, signal: AbortSignal): Promise<number>;
  /**
   * Tokens the provider's own rendering of a request may add beyond the byte bound of the request as
   * given (a local model's chat template injects instructions and markers): added to the reservation.
   */
  inputAllowance?(req: ProviderRequest): number;
  /** Map a thrown error to the catalogue. */
  mapError(err: unknown): DaemonError;
}
