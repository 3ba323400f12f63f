/**
 * Anthropic through @anthropic-ai/sdk. Streaming always (long calls are safe from idle-connection
 * limits and the SDK refuses long non-streaming calls), the SDK's own retries and timeout configured,
 * no retry loop of ours on top: one layer of backoff, honouring `retry-after`, is the API's contract.
 */
import fs from 'node:fs';
import type Anthropic from '@anthropic-ai/sdk';
import type { Logger } from 'pino';
import { DaemonError } from '../../../daemon/plugin-api.js';
import type { CallHooks, Provider, ProviderRequest, ProviderResult, ProviderStatus, ProviderUsage } from './types.js';

export interface AnthropicOptions {
  apiKeyFile?: string;
  baseURL?: string;
  maxRetries: number;
  timeoutMs: number;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

export const HOW_TO_CONFIGURE =
  'no Anthropic API key: set ANTHROPIC_API_KEY and run daemon-control restart (a running daemon keeps the environment it was started with), or name a file holding the key in agentd.yaml as completion.api_key_file';

/** The SDK logs through this; pino gets the messages, never the request headers. */
function sdkLogger(log: Logger) {
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string) =>
    log[level]({ source: 'anthropic-sdk' }, String(msg));
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

type Sdk = typeof Anthropic;

export class AnthropicProvider implements Provider {
  readonly name = 'anthropic';
  readonly kind = 'anthropic';
  readonly baseURL: string | null;
  private readonly client: Anthropic | null;

  /**
   * The SDK is imported only when there is a key to use it with: it is the largest module the daemon
   * could load (~20 MB and ~100 ms), and a daemon without a key never calls it.
   */
  static async create(opts: AnthropicOptions): Promise<AnthropicProvider> {
    const { key, reason } = resolveKey(opts);
    const sdk = key ? (await import('@anthropic-ai/sdk')).default : null;
    return new AnthropicProvider(opts, key, reason, sdk);
  }

  private constructor(
    opts: AnthropicOptions,
    key: string | undefined,
    private readonly reason: string | undefined,
    private readonly Sdk: Sdk | null,
  ) {
    this.baseURL = opts.baseURL ?? opts.env.ANTHROPIC_BASE_URL ?? null;
    this.client =
      key && Sdk
        ? new Sdk({
            apiKey: key,
            baseURL: opts.baseURL ?? opts.env.ANTHROPIC_BASE_URL ?? null,
            maxRetries: opts.maxRetries,
            timeout: opts.timeoutMs,
            logger: sdkLogger(opts.log),
            logLevel: 'warn',
          })
        : null;
  }

  status(): ProviderStatus {
    return this.client ? { configured: true } : { configured: false, reason: this.reason ?? HOW_TO_CONFIGURE };
  }

  private sdk(): Anthropic {
    if (!this.client)
      throw new DaemonError('UNAVAILABLE', this.reason ?? HOW_TO_CONFIGURE, {
        provider: 'anthropic',
        configured: false,
      });
    return this.client;
  }

  async complete(req: ProviderRequest, hooks: CallHooks): Promise<ProviderResult> {
    const stream = this.sdk().messages.stream(req as unknown as Anthropic.MessageStreamParams, {
      signal: hooks.signal,
    });
    if (hooks.onText) stream.on('text', hooks.onText);
    if (hooks.onStart) {
      const onStart = hooks.onStart;
      stream.on('streamEvent', (ev) => {
        if (ev.type === 'message_start') onStart(normUsage(ev.message.usage));
      });
    }
    const msg = await stream.finalMessage();
    const content = msg.content as unknown as Array<Record<string, unknown>>;
    return {
      model: msg.model,
      content,
      text: content
        .filter((b) => b.type === 'text')
        .map((b) => String(b.text))
        .join(''),
      stop_reason: msg.stop_reason ?? null,
      usage: normUsage(msg.usage),
      provider_request_id: stream.request_id ?? null,
    };
  }

  async countTokens(req: ProviderRequest, signal: AbortSignal): Promise<number> {
    const { max_tokens: _m, temperature: _t, top_p: _p, top_k: _k, stop_sequences: _s, metadata: _md, ...rest } = req;
    const r = await this.sdk().messages.countTokens(rest as unknown as Anthropic.MessageCountTokensParams, {
      signal,
      maxRetries: 0,
      timeout: 10_000,
    });
    return r.input_tokens;
  }

  mapError(err: unknown): DaemonError {
    if (err instanceof DaemonError) return err;
    const Anthropic = this.Sdk;
    if (!Anthropic)
      return new DaemonError(
        'UNAVAILABLE',
        `the Anthropic API call failed: ${(err as Error)?.message ?? String(err)}`,
        { provider: 'anthropic' },
      );
    if (err instanceof Anthropic.APIUserAbortError) return new DaemonError('CANCELLED', 'the call was aborted');
    if (err instanceof Anthropic.APIConnectionTimeoutError)
      return new DaemonError('TIMEOUT', 'the Anthropic API did not answer in time (after the SDK retries)', {
        provider: 'anthropic',
      });
    if (err instanceof Anthropic.APIConnectionError)
      return new DaemonError('UNAVAILABLE', `cannot reach the Anthropic API: ${err.message}`, {
        provider: 'anthropic',
      });
    if (err instanceof Anthropic.APIError) {
      const apiType = apiErrorType(err);
      const details = {
        provider: 'anthropic',
        status: err.status ?? null,
        type: apiType,
        provider_request_id: err.requestID ?? null,
      };
      const msg = `Anthropic API: ${apiMessage(err)}`;
      const status = err.status;
      if (status === undefined) {
        // An error event inside an already-started stream (e.g. overloaded mid-answer).
        return new DaemonError(apiType === 'invalid_request_error' ? 'INVALID_DATA' : 'UNAVAILABLE', msg, details);
      }
      if (status === 429 || status === 529) return new DaemonError('OVERLOADED', msg, details);
      if (status === 401 || status === 403)
        return new DaemonError('UNAVAILABLE', `${msg} (check the API key)`, details);
      if (status === 400 || status === 404 || status === 413 || status === 422)
        return new DaemonError('INVALID_DATA', msg, details);
      if (status === 408 || status === 504) return new DaemonError('TIMEOUT', msg, details);
      return new DaemonError('UNAVAILABLE', msg, details);
    }
    // A connection cut mid-stream surfaces as a plain error from the stream reader.
    return new DaemonError('UNAVAILABLE', `the Anthropic API call failed: ${(err as Error)?.message ?? String(err)}`, {
      provider: 'anthropic',
    });
  }
}

function resolveKey(opts: AnthropicOptions): { key: string | undefined; reason: string | undefined } {
  if (opts.apiKeyFile) {
    try {
      const key = fs.readFileSync(opts.apiKeyFile, 'utf8').trim() || undefined;
      return {
        key,
        reason: key ? undefined : `completion.api_key_file ${opts.apiKeyFile} is empty; ${HOW_TO_CONFIGURE}`,
      };
    } catch (e) {
      return {
        key: undefined,
        reason: `cannot read completion.api_key_file ${opts.apiKeyFile} (${(e as NodeJS.ErrnoException).code ?? 'error'}); ${HOW_TO_CONFIGURE}`,
      };
    }
  }
  const key = opts.env.ANTHROPIC_API_KEY?.trim() || undefined;
  return { key, reason: key ? undefined : HOW_TO_CONFIGURE };
}

function apiErrorType(err: InstanceType<typeof Anthropic.APIError>): string | null {
  const e = err.error as { error?: { type?: string }; type?: string } | undefined;
  return e?.error?.type ?? e?.type ?? null;
}

function apiMessage(err: InstanceType<typeof Anthropic.APIError>): string {
  const e = err.error as { error?: { message?: string } } | undefined;
  return e?.error?.message ?? err.message;
}

function normUsage(u: Anthropic.Usage | undefined): ProviderUsage {
  return {
    input_tokens: u?.input_tokens ?? 0,
    output_tokens: u?.output_tokens ?? 0,
    cache_creation_input_tokens: u?.cache_creation_input_tokens ?? 0,
    cache_read_input_tokens: u?.cache_read_input_tokens ?? 0,
    cache_creation: u?.cache_creation ?? null,
  };
}
