/**
 * The providers of one completion service: Anthropic for unprefixed model names, and each
 * `completion.providers.<name>` for `<name>/<model>`. Routes a model name to its provider, resolves
 * aliases (with their fallbacks), limits the calls in flight per provider, and keeps each provider's
 * recent state for `completion:status` and `system:health`.
 */
import type { Logger } from 'pino';
import { DaemonError } from '../../../daemon/plugin-api.js';
import { DEFAULT_ALIASES, type CompletionConfig } from '../config.js';
import { AnthropicProvider } from './anthropic.js';
import { OpenAIProvider } from './openai.js';
import type { Provider } from './types.js';

export const ANTHROPIC = 'anthropic';

export interface Route {
  provider: Provider;
  /** The model id the provider is asked for (the name without its provider prefix). */
  model: string;
}

/** Calls in flight to one provider, at most `limit`; waiters are served in order. */
export class Limiter {
  active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(
    readonly limit: number,
    private readonly onFree: () => void,
  ) {}

  get full(): boolean {
    return this.active >= this.limit;
  }

  tryAcquire(): boolean {
    if (this.full) return false;
    this.active++;
    return true;
  }

  /** Wait for a slot; rejects when the signal aborts first. */
  acquire(signal: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const take = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.active++;
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(take);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason instanceof Error ? signal.reason : new DaemonError('CANCELLED', 'aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(take);
    });
  }

  release(): void {
    this.active--;
    const next = this.waiters.shift();
    if (next) next();
    else this.onFree();
  }
}

/** What `completion:status` and `system:health` say about a provider. */
export interface ProviderState {
  name: string;
  kind: string;
  base_url: string | null;
  configured: boolean;
  reason?: string;
  /** ok: its last call answered; failing: its last call found it unreachable, overloaded or failing (5xx); idle: no call yet; unconfigured. */
  state: 'ok' | 'failing' | 'idle' | 'unconfigured';
  in_flight: number;
  max_concurrency: number;
  calls: number;
  failures: number;
  last_ok_at: number | null;
  last_error: { code: string; message: string; at: number } | null;
}

/** A URL as shown in answers: never with the credentials it may carry (user and password, a query). */
function shownUrl(u: string | null): string | null {
  if (!u) return u;
  try {
    const url = new URL(u);
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return null;
  }
}

/**
 * The errors that try the next model of an alias: the provider is unreachable (connection refused,
 * timed out, not configured), overloaded (429/529) or failing (5xx), each after the SDK's retries.
 * A request the provider rejected (4xx) would be rejected by the next one too.
 */
export function isProviderFailure(e: DaemonError): boolean {
  if (e.code === 'OVERLOADED' || e.code === 'TIMEOUT') return true;
  if (e.code !== 'UNAVAILABLE') return false;
  const status = e.details?.status;
  return typeof status !== 'number' || status >= 500;
}

export class Providers {
  private readonly byName = new Map<string, Provider>();
  private readonly limiters = new Map<string, Limiter>();
  private readonly stats = new Map<
    string,
    Pick<ProviderState, 'calls' | 'failures' | 'last_ok_at' | 'last_error'> & { lastFailed: boolean }
  >();
  private readonly aliases: Record<string, { model: string; fallbacks: string[] }>;
  /** Called with a provider's name when one of its slots frees up. */
  onFree: (provider: string) => void = () => undefined;

  constructor(providers: Provider[], limits: Record<string, number>, aliases: CompletionConfig['models']) {
    for (const p of providers) {
      this.byName.set(p.name, p);
      this.limiters.set(p.name, new Limiter(limits[p.name]!, () => this.onFree(p.name)));
      this.stats.set(p.name, { calls: 0, failures: 0, last_ok_at: null, last_error: null, lastFailed: false });
    }
    this.aliases = {};
    for (const [name, a] of Object.entries({ ...DEFAULT_ALIASES, ...aliases })) {
      this.aliases[name] =
        typeof a === 'string' ? { model: a, fallbacks: [] } : { model: a.model, fallbacks: a.fallbacks };
    }
    // An alias naming a provider that does not exist is a configuration error, found at start.
    for (const [name, a] of Object.entries(this.aliases)) {
      for (const m of [a.model, ...a.fallbacks]) {
        const p = this.providerName(m);
        if (!this.byName.has(p))
          throw new Error(
            `completion.models.${name} names ${m}, but there is no provider "${p}" (configure completion.providers.${p})`,
          );
      }
    }
  }

  /** Build the providers a config names; SDKs are imported only for the kinds in use. */
  static async create(config: CompletionConfig, env: NodeJS.ProcessEnv, log: Logger): Promise<Providers> {
    const list: Provider[] = [
      await AnthropicProvider.create({
        ...(config.api_key_file ? { apiKeyFile: config.api_key_file } : {}),
        ...(config.base_url ? { baseURL: config.base_url } : {}),
        maxRetries: config.max_retries,
        timeoutMs: config.timeout_ms,
        env,
        log,
      }),
    ];
    const limits: Record<string, number> = { [ANTHROPIC]: config.max_concurrency };
    for (const [name, pc] of Object.entries(config.providers)) {
      if (name === ANTHROPIC)
        throw new Error(
          'completion.providers.anthropic: the name anthropic is built in (configure it with completion.base_url and api_key_file)',
        );
      list.push(
        await OpenAIProvider.create({
          name,
          config: pc,
          maxRetries: config.max_retries,
          timeoutMs: config.timeout_ms,
          env,
          log,
        }),
      );
      limits[name] = pc.max_concurrency ?? config.max_concurrency;
    }
    return new Providers(list, limits, config.models);
  }

  /** The provider part of a model name: the prefix before the first `/`, else Anthropic. */
  providerName(model: string): string {
    const i = model.indexOf('/');
    return i > 0 ? model.slice(0, i) : ANTHROPIC;
  }

  /** The aliases in force (the shipped ones merged with completion.models), each with its fallbacks. */
  aliasTable(): Record<string, { model: string; fallbacks: string[] }> {
    return structuredClone(this.aliases);
  }

  /**
   * An alias or model name → the models to try, in order. `anthropic/<model>` is the same as the
   * bare name (one price entry, one journal spelling).
   */
  resolve(name: string): { model: string; fallbacks: string[] } {
    const a = this.aliases[name];
    const norm = (m: string): string => (m.startsWith(`${ANTHROPIC}/`) ? m.slice(ANTHROPIC.length + 1) : m);
    if (a) return { model: norm(a.model), fallbacks: a.fallbacks.map(norm) };
    return { model: norm(name), fallbacks: [] };
  }

  /** Where a (resolved) model goes; INVALID_DATA for a provider nobody configured. */
  route(model: string): Route {
    const name = this.providerName(model);
    const provider = this.byName.get(name);
    if (!provider) {
      throw new DaemonError(
        'INVALID_DATA',
        `model ${model} names provider "${name}", which is not configured; add completion.providers.${name} {kind: openai, base_url} to agentd.yaml`,
        {
          issues: [{ path: ['model'], message: `no provider ${name}` }],
          model,
        },
      );
    }
    return { provider, model: name === ANTHROPIC ? model : model.slice(name.length + 1) };
  }

  limiter(provider: string): Limiter {
    return this.limiters.get(provider)!;
  }

  /** The first model of a chain whose provider is configured, or null when none is. */
  firstUsable(chain: string[]): string | null {
    for (const m of chain) {
      const p = this.byName.get(this.providerName(m));
      if (p && p.status().configured) return m;
    }
    return null;
  }

  /** Record a call's outcome for the provider's state (`failure`: it was unreachable, overloaded or failing). */
  record(provider: string, outcome: 'ok' | 'failure' | 'other', error?: DaemonError): void {
    const s = this.stats.get(provider);
    if (!s) return;
    s.calls++;
    if (outcome === 'ok') {
      s.last_ok_at = Date.now() / 1000;
      s.lastFailed = false;
    } else if (outcome === 'failure') {
      s.failures++;
      s.lastFailed = true;
      s.last_error = { code: error?.code ?? 'UNAVAILABLE', message: error?.message ?? '', at: Date.now() / 1000 };
    }
  }

  states(): Record<string, ProviderState> {
    const out: Record<string, ProviderState> = {};
    for (const [name, p] of this.byName) {
      const st = p.status();
      const s = this.stats.get(name)!;
      const l = this.limiters.get(name)!;
      out[name] = {
        name,
        kind: p.kind,
        base_url: shownUrl(p.baseURL),
        configured: st.configured,
        ...(st.reason ? { reason: st.reason } : {}),
        state: !st.configured ? 'unconfigured' : s.lastFailed ? 'failing' : s.last_ok_at !== null ? 'ok' : 'idle',
        in_flight: l.active,
        max_concurrency: l.limit,
        calls: s.calls,
        failures: s.failures,
        last_ok_at: s.last_ok_at,
        last_error: s.last_error,
      };
    }
    return out;
  }

  get(name: string): Provider | undefined {
    return this.byName.get(name);
  }
}
