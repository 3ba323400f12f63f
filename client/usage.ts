/**
 * Token usage, the one shape for completion results, agent turns and budget settlements: the
 * Messages API's field names, which every provider's usage is mapped to.
 */

/** How cache writes split by time to live, when the provider says. */
export interface CacheCreation {
  ephemeral_5m_input_tokens?: number | null;
  ephemeral_1h_input_tokens?: number | null;
}

export interface TokenUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation?: CacheCreation | null;
}

/** Usage as a caller may report it: cache counts absent or null mean none. */
export type ReportedUsage = Pick<TokenUsage, 'input_tokens' | 'output_tokens'> & {
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation?: CacheCreation | null;
};

export const ZERO_USAGE: Readonly<TokenUsage> = Object.freeze({
  input_tokens: 0,
  output_tokens: 0,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: 0,
});

/** The sum of two usages (the TTL split is not carried). */
export function addUsage(a: ReportedUsage, b: Partial<ReportedUsage>): TokenUsage {
  return {
    input_tokens: a.input_tokens + (b.input_tokens ?? 0),
    output_tokens: a.output_tokens + (b.output_tokens ?? 0),
    cache_creation_input_tokens: (a.cache_creation_input_tokens ?? 0) + (b.cache_creation_input_tokens ?? 0),
    cache_read_input_tokens: (a.cache_read_input_tokens ?? 0) + (b.cache_read_input_tokens ?? 0),
  };
}

/** Every token counted: input, output and both cache kinds. */
export const totalTokens = (u: ReportedUsage): number =>
  u.input_tokens + u.output_tokens + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0);
