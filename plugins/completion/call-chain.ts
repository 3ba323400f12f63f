/**
 * One run of a request: reserve the call's worst case, ask the provider, and — for an alias with
 * fallbacks — the next model when a provider cannot answer. Kept apart from the service, which owns
 * the journal, the queue and the outcome; this part knows providers and the budget's reservations.
 */
import type { Logger } from 'pino';
import { DaemonError, type EventContext, type RequestOptions } from '../../daemon/plugin-api.js';
import type { CompletionConfig } from './config.js';
import { inputShape } from './input-bound.js';
import { isProviderFailure, type Providers } from './providers/registry.js';
import type { Provider, ProviderRequest, ProviderResult, ProviderUsage } from './providers/types.js';
import type { TokenCoalescer } from './tokens.js';

/** Who holds this plugin's reservations in the budget (reconciled after a crash). */
export const HOLDER = 'completion';

export interface ChainDeps {
  config: CompletionConfig;
  providers: Providers;
  log: Logger;
  request: <T = Record<string, unknown>>(
    event: string,
    data: Record<string, unknown>,
    opts?: RequestOptions & { context?: EventContext },
  ) => Promise<T>;
  emit: (event: string, data: Record<string, unknown>, opts?: { context?: EventContext }) => void;
}

/** The request being run, as far as the chain needs it. */
export interface ChainItem {
  id: string;
  session_id: string | null;
  agent_id: string | null;
  context: EventContext | undefined;
}

/** A model of the chain that failed before the one that answered. */
export interface Tried {
  model: string;
  code: string;
  message: string;
}

/** The model call in progress, as far as settling its budget needs to know (also after a failure). */
export interface CallState {
  /** The model of the chain being asked. */
  model: string;
  reserved: boolean;
  /** Input tokens reserved (a count, or a bound never below it). */
  input: number;
  /** Set once the provider started answering: what is billed even if the call then fails. */
  billed: ProviderUsage | null;
  /** Text characters received (never fewer than the output tokens they carry). */
  chars: number;
}

export interface ChainRun {
  item: ChainItem;
  /** The models to ask, in order. */
  chain: string[];
  /** The model whose provider slot the caller already took (the queue's gate let the request start for it). */
  held: string | null;
  req: ProviderRequest;
  attempt: number;
  signal: AbortSignal;
  /** True once the call was cancelled or handed back at shutdown: no fallback then. */
  stopped: () => boolean;
  coalescer: TokenCoalescer | null;
}

export class CallChain {
  constructor(private readonly deps: ChainDeps) {}

  /**
   * Ask the models of the chain in turn until one answers. The next is tried only when a provider
   * was unusable, unreachable, overloaded or failing (after its SDK's retries) before it started
   * answering: nothing of that call was billed, so its reservation is released and the next model's
   * reserved under the same (request, attempt), which the budget may refuse like any call.
   */
  async call(r: ChainRun, call: CallState): Promise<{ res: ProviderResult; provider: Provider; tried: Tried[] }> {
    const { item: it, chain } = r;
    const providers = this.deps.providers;
    const tried: Tried[] = [];
    let slot = r.held;
    try {
      for (let i = 0; ; i++) {
        const model = chain[i]!;
        const last = i === chain.length - 1;
        const route = providers.route(model);
        const provider = route.provider;
        call.model = model;
        const ps = provider.status();
        if (!ps.configured) {
          const e = new DaemonError('UNAVAILABLE', ps.reason ?? `provider ${provider.name} is not configured`, {
            provider: provider.name,
            configured: false,
          });
          if (last) throw e;
          tried.push({ model, code: e.code, message: e.message });
          continue;
        }
        if (slot !== model) {
          const limiter = providers.limiter(provider.name);
          if (!limiter.tryAcquire()) await limiter.acquire(r.signal);
          slot = model;
        }
        try {
          call.input = await this.reserve(it, r.req, model, provider, r.attempt, r.signal);
          call.reserved = true;
          const res = await provider.complete(
            { ...r.req, model: route.model },
            {
              signal: r.signal,
              onText: (t) => {
                call.chars += t.length;
                r.coalescer?.push(t);
              },
              onStart: (u) =>
                (call.billed = u ?? {
                  input_tokens: call.input,
                  output_tokens: 0,
                  cache_creation_input_tokens: 0,
                  cache_read_input_tokens: 0,
                }),
            },
          );
          providers.record(provider.name, 'ok');
          return { res, provider, tried };
        } catch (err) {
          const e = provider.mapError(err);
          const failure = isProviderFailure(e);
          // Only a call that was made says something about the provider (not a refused reservation, not a cancel).
          if (call.reserved && !r.stopped()) providers.record(provider.name, failure ? 'failure' : 'other', e);
          if (last || !failure || r.stopped() || call.billed !== null || !call.reserved) throw e;
          await this.deps.request(
            'budget:release',
            { request_id: it.id, attempt: r.attempt, reason: 'fallback' },
            { context: it.context },
          );
          call.reserved = false;
          tried.push({ model, code: e.code, message: e.message });
          this.deps.log.info(
            { request_id: it.id, from: model, to: chain[i + 1], code: e.code },
            'completion falls back',
          );
          this.deps.emit(
            'completion:fallback',
            {
              request_id: it.id,
              session_id: it.session_id,
              agent_id: it.agent_id,
              from: model,
              to: chain[i + 1]!,
              error: { code: e.code, message: e.message },
            },
            { context: it.context },
          );
        } finally {
          providers.limiter(provider.name).release();
          slot = null;
        }
      }
    } finally {
      // A slot taken for a model that was never asked (the chain failed before reaching it).
      if (slot !== null) providers.limiter(providers.providerName(slot)).release();
    }
  }

  /**
   * Reserve the call's worst case; answers the input tokens reserved. The input side starts from a
   * byte bound (no network round trip), plus what the provider's own rendering may add; only when
   * that bound does not fit the budget is the exact count asked of the API (where the provider can
   * count), so a tight budget is not refused for a loose estimate, and a loose budget costs no extra call.
   */
  private async reserve(
    it: ChainItem,
    req: ProviderRequest,
    model: string,
    provider: Provider,
    attempt: number,
    signal: AbortSignal,
  ): Promise<number> {
    const shape = inputShape(req);
    const base = {
      request_id: it.id,
      attempt,
      holder: HOLDER,
      model,
      max_tokens: req.max_tokens,
      cache_ttl: shape.cacheTtl,
      ...(it.agent_id ? { agent_id: it.agent_id } : {}),
      ...(it.session_id ? { session_id: it.session_id } : {}),
    };
    const mode = this.deps.config.count_tokens;
    const canCount = mode !== 'never' && provider.countTokens !== undefined;
    let input = shape.bound + (provider.inputAllowance?.(req) ?? 0);
    if (mode === 'always' && canCount) input = (await this.count(provider, req, signal)) ?? input;
    try {
      await this.deps.request(
        'budget:reserve',
        { ...base, input_tokens: input, notify: !(mode === 'auto' && canCount) },
        { context: it.context },
      );
      return input;
    } catch (e) {
      if (!(mode === 'auto' && canCount && e instanceof DaemonError && e.code === 'BUDGET_EXCEEDED')) throw e;
      const counted = await this.count(provider, req, signal);
      const n = counted !== null && counted < input ? counted : input;
      await this.deps.request('budget:reserve', { ...base, input_tokens: n }, { context: it.context });
      return n;
    }
  }

  private async count(provider: Provider, req: ProviderRequest, signal: AbortSignal): Promise<number | null> {
    try {
      return await provider.countTokens!(req, signal);
    } catch (err) {
      this.deps.log.debug({ err: provider.mapError(err).message }, 'token count unavailable; using the byte bound');
      return null;
    }
  }
}
