/**
 * The price table and the arithmetic on it. Money is integer nano-dollars (1e-9 USD) so that
 * "spent + reserved + request <= limit" is exact: a float sum of thousands of tiny costs drifts,
 * and a drift is exactly how a hard limit gets overspent by a cent.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { byCodePoint, parseYamlText } from '../../daemon/plugin-api.js';
import { formatIssues } from '../../client/issues.js';
import type { ReportedUsage as Usage } from '../../client/usage.js';

const rate = z.number().finite().nonnegative();

const bandSchema = z.object({
  input: rate,
  output: rate,
  /** 5-minute cache writes; defaults to 1.25x input like every Anthropic model. */
  cache_write: rate.optional(),
  /** 1-hour cache writes; defaults to 2x input. */
  cache_write_1h: rate.optional(),
  /** Cache hits; defaults to 0.1x input. */
  cache_read: rate.optional(),
});

export const modelPriceSchema = bandSchema.extend({
  long_context: bandSchema.extend({ threshold_tokens: z.number().int().positive() }).optional(),
});

export const priceFileSchema = z.object({ models: z.record(z.string().min(1), modelPriceSchema) });

export type ModelPriceInput = z.infer<typeof modelPriceSchema>;

/** One band of resolved rates, USD per million tokens. */
export interface Band {
  input: number;
  output: number;
  cache_write: number;
  cache_write_1h: number;
  cache_read: number;
}

export interface ModelPrice extends Band {
  long_context?: Band & { threshold_tokens: number };
}

export type { ReportedUsage as Usage } from '../../client/usage.js';

export const NANOS_PER_USD = 1e9;
export const toUsd = (nanos: number): number => Math.round(nanos) / NANOS_PER_USD;
/** USD to nanos, rounded up: a limit or a cost is never understated. */
export const fromUsd = (usd: number): number => {
  const x = usd * NANOS_PER_USD;
  // 67.65 * 1e9 is 67650000000.00001 in floating point: noise, not a fraction of a nano to round up.
  const r = Math.round(x);
  return Math.abs(x - r) < 1e-3 ? r : Math.ceil(x);
};

function resolveBand(b: z.infer<typeof bandSchema>): Band {
  return {
    input: b.input,
    output: b.output,
    cache_write: b.cache_write ?? b.input * 1.25,
    cache_write_1h: b.cache_write_1h ?? b.input * 2,
    cache_read: b.cache_read ?? b.input * 0.1,
  };
}

/** nanos for `tokens` at `perMillionUsd`, rounded up. perMillion USD = 1000 nanos per token per dollar. */
const cost = (tokens: number, perMillionUsd: number): number => Math.ceil(tokens * perMillionUsd * 1000 - 1e-9);

export class PriceTable {
  private readonly models = new Map<string, ModelPrice>();

  constructor(entries: Record<string, ModelPriceInput>) {
    for (const [name, p] of Object.entries(entries)) {
      const lc = p.long_context
        ? { ...resolveBand(p.long_context), threshold_tokens: p.long_context.threshold_tokens }
        : undefined;
      this.models.set(name, lc ? { ...resolveBand(p), long_context: lc } : resolveBand(p));
    }
  }

  /** Load the shipped table, then a user file, then inline overrides (later wins per model). */
  static load(files: string[], inline: Record<string, ModelPriceInput> = {}): PriceTable {
    const merged: Record<string, ModelPriceInput> = {};
    for (const f of files) {
      const parsed = priceFileSchema.safeParse(parseYamlText(fs.readFileSync(f, 'utf8')));
      if (!parsed.success)
        throw new Error(`price file ${f} is invalid: ${formatIssues(parsed.error.issues, { root: '(file)' })}`);
      Object.assign(merged, parsed.data.models);
    }
    Object.assign(merged, inline);
    return new PriceTable(merged);
  }

  /**
   * The price of a model; a dated snapshot id falls back to its undated name (Anthropic's
   * `claude-haiku-4-5-20251001`, OpenAI's `gpt-4o-2024-08-06`).
   */
  get(model: string): ModelPrice | undefined {
    return this.models.get(model) ?? this.models.get(model.replace(/-(\d{8}|\d{4}-\d{2}-\d{2})$/, ''));
  }

  /**
   * The price to charge a model at. A model of another provider (`<provider>/<model>`) without an
   * entry costs nothing and says so: a local model has no price, and refusing it would make every
   * Ollama or vLLM model need a table entry of zeros. An unpriced Anthropic model is still refused
   * by the caller: its calls are billed, so a missing entry is a missing price, not a free model.
   */
  lookup(model: string): { price: ModelPrice; known: boolean } | undefined {
    const p = this.get(model);
    if (p) return { price: p, known: true };
    return providerOf(model) === DEFAULT_PROVIDER ? undefined : { price: ZERO, known: false };
  }

  list(): Record<string, ModelPrice> {
    return Object.fromEntries([...this.models].sort(([a], [b]) => byCodePoint(a, b)));
  }

  /** What a call cost, from the usage the API reported. */
  costNanos(price: ModelPrice, u: Usage): number {
    const write = u.cache_creation_input_tokens ?? 0;
    const w1h = Math.min(write, u.cache_creation?.ephemeral_1h_input_tokens ?? 0);
    const w5m = write - w1h;
    const read = u.cache_read_input_tokens ?? 0;
    const band = pickBand(price, u.input_tokens + write + read);
    return (
      cost(u.input_tokens, band.input) +
      cost(w5m, band.cache_write) +
      cost(w1h, band.cache_write_1h) +
      cost(read, band.cache_read) +
      cost(u.output_tokens, band.output)
    );
  }

  /**
   * The most a call can cost: every input token at the dearest rate it could be billed at (a cache
   * write when the request asks for caching), and all of `max_tokens` produced.
   */
  worstCaseNanos(price: ModelPrice, inputTokens: number, maxTokens: number, cacheTtl: CacheTtl): number {
    const band = pickBand(price, inputTokens);
    const inRate =
      cacheTtl === '1h'
        ? Math.max(band.input, band.cache_write_1h, band.cache_write)
        : cacheTtl === '5m'
          ? Math.max(band.input, band.cache_write)
          : band.input;
    return cost(inputTokens, inRate) + cost(maxTokens, band.output);
  }
}

export type CacheTtl = 'none' | '5m' | '1h';

/** Unprefixed model names belong to this provider. */
export const DEFAULT_PROVIDER = 'anthropic';

/** The provider a model name belongs to: the prefix before the first `/`, else Anthropic. */
export function providerOf(model: string): string {
  const i = model.indexOf('/');
  return i > 0 ? model.slice(0, i) : DEFAULT_PROVIDER;
}

const ZERO: ModelPrice = { input: 0, output: 0, cache_write: 0, cache_write_1h: 0, cache_read: 0 };

export { totalTokens } from '../../client/usage.js';

function pickBand(p: ModelPrice, promptTokens: number): Band {
  return p.long_context && promptTokens > p.long_context.threshold_tokens ? p.long_context : p;
}
