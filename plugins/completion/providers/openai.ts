/**
 * An OpenAI-compatible provider through the official `openai` SDK's chat completions: OpenAI itself,
 * and the servers that speak its wire format (Ollama, vLLM, llama.cpp's server, a LiteLLM proxy).
 * Like the Anthropic provider: always streamed, the SDK's own retries (429/5xx/connection, honouring
 * retry-after) and timeout, no retry loop of ours. Requests and answers are converted at this edge
 * (openai-convert.ts), so the rest of agentd sees one history format.
 */
import type OpenAI from 'openai';
import type { Logger } from 'pino';
import { DaemonError } from '../../../daemon/plugin-api.js';
import type { ProviderConfig } from '../config.js';
import {
  ChatAssembler,
  toChatRequest,
  usageOf,
  type ChatRequestOptions,
  type ChunkDelta,
  type ChunkUsage,
} from './openai-convert.js';
import type { CallHooks, Provider, ProviderRequest, ProviderResult, ProviderStatus } from './types.js';

export interface OpenAIOptions {
  name: string;
  config: ProviderConfig;
  maxRetries: number;
  timeoutMs: number;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

/**
 * What a chat template may add to a prompt beyond the request's own bytes: the role markers are in
 * the per-message allowance of the byte bound; this covers the instructions some templates inject
 * (a default system prompt, a date line, a paragraph on how to call the tools) and each tool's
 * wrapping. Generous on purpose: the reservation must never be below the real count.
 */
const TEMPLATE_ALLOWANCE = 512;
const PER_TOOL_ALLOWANCE = 32;
/**
 * An image is billed by its size in tiles, not by its bytes: a URL is a few dozen bytes. OpenAI's
 * high-detail maximum for its gpt-4o and gpt-4.1 class is below this; a model that bills images as
 * many more tokens (gpt-4o-mini does) can exceed it, and is then settled at what it reports.
 */
const PER_IMAGE_ALLOWANCE = 1500;

function imageCount(req: ProviderRequest): number {
  let n = 0;
  for (const m of req.messages) {
    if (typeof m.content === 'string') continue;
    for (const b of m.content) if (b.type === 'image') n++;
  }
  return n;
}

type Sdk = typeof OpenAI;

/** Resolves when the signal aborts: the SDK sleeps out a retry-after before it notices a cancel. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () =>
      reject(signal.reason instanceof Error ? signal.reason : new DaemonError('CANCELLED', 'the call was aborted'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

export class OpenAIProvider implements Provider {
  readonly kind = 'openai';
  readonly baseURL: string;
  private readonly client: OpenAI | null;
  private readonly reason: string | undefined;
  private readonly opts: ChatRequestOptions;

  /** The SDK is imported only when a provider of this kind is configured. */
  static async create(o: OpenAIOptions): Promise<OpenAIProvider> {
    const sdk = (await import('openai')).default;
    return new OpenAIProvider(o, sdk);
  }

  private constructor(
    o: OpenAIOptions,
    private readonly Sdk: Sdk,
  ) {
    this.name = o.name;
    this.baseURL = o.config.base_url;
    const envName = o.config.api_key_env;
    const key = envName ? o.env[envName]?.trim() || undefined : undefined;
    this.reason =
      envName && !key
        ? `no API key for provider ${o.name}: set ${envName} in the environment the daemon starts with (completion.providers.${o.name}.api_key_env names it)`
        : undefined;
    const official = new URL(o.config.base_url).hostname === 'api.openai.com';
    this.opts = { maxTokensParam: o.config.max_tokens_param ?? (official ? 'max_completion_tokens' : 'max_tokens') };
    const at = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string) =>
      o.log[level]({ source: 'openai-sdk', provider: o.name }, String(msg));
    this.client = this.reason
      ? null
      : new Sdk({
          // A server without authentication still needs some key for the SDK; it is sent and ignored.
          apiKey: key ?? 'no-key',
          baseURL: o.config.base_url,
          // Only what agentd's config says reaches the provider, not OPENAI_* variables of the environment.
          organization: null,
          project: null,
          maxRetries: o.config.max_retries ?? o.maxRetries,
          timeout: o.config.timeout_ms ?? o.timeoutMs,
          logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
          logLevel: 'warn',
        });
  }

  readonly name: string;

  status(): ProviderStatus {
    return this.client
      ? { configured: true }
      : { configured: false, reason: this.reason ?? `provider ${this.name} is not configured` };
  }

  private sdk(): OpenAI {
    if (!this.client)
      throw new DaemonError('UNAVAILABLE', this.reason ?? `provider ${this.name} is not configured`, {
        provider: this.name,
        configured: false,
      });
    return this.client;
  }

  inputAllowance(req: ProviderRequest): number {
    return TEMPLATE_ALLOWANCE + PER_TOOL_ALLOWANCE * (req.tools?.length ?? 0) + PER_IMAGE_ALLOWANCE * imageCount(req);
  }

  async complete(req: ProviderRequest, hooks: CallHooks): Promise<ProviderResult> {
    const body = toChatRequest(req, req.model, this.opts);
    const call = this.stream(body, hooks);
    return Promise.race([call, aborted(hooks.signal)]);
  }

  private async stream(body: Record<string, unknown>, hooks: CallHooks): Promise<ProviderResult> {
    const { data: stream, request_id } = await this.sdk()
      .chat.completions.create(body as unknown as OpenAI.Chat.ChatCompletionCreateParamsStreaming, {
        signal: hooks.signal,
      })
      .withResponse();
    const a = new ChatAssembler();
    let started = false;
    for await (const chunk of stream) {
      if (!started) {
        started = true;
        hooks.onStart?.(null);
      }
      if (chunk.model) a.model = chunk.model;
      if (chunk.usage) a.usage = chunk.usage as ChunkUsage;
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      const text = a.delta(choice.delta as ChunkDelta | undefined);
      if (text && hooks.onText) hooks.onText(text);
      if (choice.finish_reason) a.finishReason = choice.finish_reason;
    }
    // A server that closes the stream cleanly but early leaves no finish reason: the answer is cut.
    if (a.finishReason === null) {
      throw new DaemonError('UNAVAILABLE', `provider ${this.name}: the stream ended before the answer was complete`, {
        provider: this.name,
        provider_request_id: request_id ?? null,
      });
    }
    const r = a.result();
    return {
      model: a.model ?? String(body.model),
      content: r.content,
      text: r.text,
      stop_reason: r.stop_reason,
      usage: usageOf(a.usage),
      usage_reported: a.usage !== null,
      provider_request_id: request_id ?? null,
    };
  }

  mapError(err: unknown): DaemonError {
    const p = this.name;
    if (err instanceof DaemonError) return err;
    const O = this.Sdk;
    if (err instanceof O.APIUserAbortError) return new DaemonError('CANCELLED', 'the call was aborted');
    if (err instanceof O.APIConnectionTimeoutError)
      return new DaemonError('TIMEOUT', `provider ${p} did not answer in time (after the SDK retries)`, {
        provider: p,
      });
    if (err instanceof O.APIConnectionError)
      return new DaemonError('UNAVAILABLE', `cannot reach provider ${p}: ${err.message}`, { provider: p });
    if (err instanceof O.APIError) {
      const e = err.error as { message?: string; type?: string; code?: string } | undefined;
      const type = e?.type ?? e?.code ?? null;
      const details = { provider: p, status: err.status ?? null, type, provider_request_id: err.requestID ?? null };
      const msg = `provider ${p}: ${e?.message ?? err.message}`;
      const status = err.status;
      // An error object inside an already-started stream.
      if (status === undefined) return new DaemonError('UNAVAILABLE', msg, details);
      if (status === 429) return new DaemonError('OVERLOADED', msg, details);
      if (status === 401 || status === 403)
        return new DaemonError('UNAVAILABLE', `${msg} (check the API key)`, details);
      if (status === 400 || status === 404 || status === 413 || status === 422)
        return new DaemonError('INVALID_DATA', msg, details);
      if (status === 408 || status === 504) return new DaemonError('TIMEOUT', msg, details);
      return new DaemonError('UNAVAILABLE', msg, details);
    }
    // A connection cut mid-stream surfaces as a plain error from the stream reader.
    return new DaemonError(
      'UNAVAILABLE',
      `the call to provider ${p} failed: ${(err as Error)?.message ?? String(err)}`,
      { provider: p },
    );
  }
}
