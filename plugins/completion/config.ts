/** The `completion:` section of agentd.yaml; every key is overridable as AGENTD_COMPLETION_<KEY>. */
import { z } from 'zod';

/** Short names people type, mapped to current model ids; the user's `models:` entries win. */
export const DEFAULT_ALIASES: Record<string, string> = {
  opus: 'claude-opus-5-5',
  sonnet: 'claude-sonnet-5-5',
  haiku: 'claude-haiku-5-5',
  fable: 'claude-fable-5-2',
};

export const configSchema = z.object({
  provider: z.enum(['anthropic']).default('anthropic').register(z.globalRegistry, { description: 'The provider used for every model (more behind the same interface later)' }),
  api_key_file: z.string().optional().register(z.globalRegistry, { description: 'A file holding the API key (default: the ANTHROPIC_API_KEY environment variable). Never logged.' }),
  base_url: z.string().url().optional().register(z.globalRegistry, { description: 'API base URL (default: ANTHROPIC_BASE_URL, else the SDK default)' }),
  default_model: z.string().min(1).default('sonnet').register(z.globalRegistry, { description: 'Model (or alias) when a request names none' }),
  models: z.record(z.string().min(1), z.string().min(1)).default({}).register(z.globalRegistry, { description: 'Model aliases: name -> model id, merged over opus/sonnet/haiku/fable' }),
  max_concurrency: z.coerce.number().int().min(1).max(1000).default(8).register(z.globalRegistry, { description: 'Calls in flight at once across all sessions' }),
  max_queue: z.coerce.number().int().min(1).max(1_000_000).default(10_000).register(z.globalRegistry, { description: 'Queued requests beyond this answer OVERLOADED' }),
  default_max_tokens: z.coerce.number().int().min(1).default(1024).register(z.globalRegistry, { description: 'max_tokens when a request gives none' }),
  max_tokens_limit: z.coerce.number().int().min(1).default(128_000).register(z.globalRegistry, { description: 'Largest max_tokens a request may ask for' }),
  max_retries: z.coerce.number().int().min(0).max(10).default(2).register(z.globalRegistry, { description: "The SDK's own retries (429/529/5xx/connection, honouring retry-after); agentd adds none" }),
  timeout_ms: z.coerce.number().int().min(1000).default(600_000).register(z.globalRegistry, { description: 'SDK timeout per HTTP attempt' }),
  restart_policy: z.enum(['retry_once', 'fail']).default('retry_once')
    .register(z.globalRegistry, { description: 'A call in flight when the daemon died: run it once more, or fail it with reason daemon_restart' }),
  count_tokens: z.enum(['auto', 'always', 'never']).default('auto')
    .register(z.globalRegistry, { description: 'Count input tokens with the API before reserving budget: auto = only when the byte bound does not fit the budget' }),
  token_flush_ms: z.coerce.number().int().min(1).max(5000).default(50).register(z.globalRegistry, { description: 'completion:token events are coalesced over this window' }),
  token_flush_chars: z.coerce.number().int().min(1).max(1_000_000).default(4096).register(z.globalRegistry, { description: '...or until this many characters are buffered' }),
  retention_hours: z.coerce.number().min(0).default(168).register(z.globalRegistry, { description: 'Finished requests stay queryable by completion:status this long' }),
});

export type CompletionConfig = z.infer<typeof configSchema>;
