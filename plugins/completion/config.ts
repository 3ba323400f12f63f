/** The `completion:` section of agentd.yaml; every key is overridable as AGENTD_COMPLETION_<KEY>. */
import { z } from 'zod';

/** Short names people type, mapped to current model ids; the user's `models:` entries win. */
export const DEFAULT_ALIASES: Record<string, string> = {
  opus: 'claude-opus-5-5',
  sonnet: 'claude-sonnet-5-5',
  haiku: 'claude-haiku-5-5',
  fable: 'claude-fable-5-2',
};

/** A provider name: the prefix of its models (`<name>/<model>`). `anthropic` is built in. */
export const PROVIDER_NAME_RE = /^[a-z][a-z0-9_-]{0,39}$/;

// Strict: a mistyped key (base_ur1) fails the section with its path instead of being dropped.
export const providerSchema = z.strictObject({
  kind: z.literal('openai').register(z.globalRegistry, {
    description:
      'openai: the chat completions API through the openai SDK (OpenAI, Ollama, vLLM, llama.cpp, LiteLLM, ...)',
  }),
  base_url: z.string().url().register(z.globalRegistry, {
    description: 'The API base URL, up to and including /v1 (e.g. http://127.0.0.1:11434/v1 for Ollama)',
  }),
  api_key_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .optional()
    .register(z.globalRegistry, {
      description: 'The environment variable holding the API key (none: the server needs no key). Never logged.',
    }),
  max_concurrency: z.coerce.number().int().min(1).max(1000).optional().register(z.globalRegistry, {
    description:
      'Calls in flight to this provider at once (default: completion.max_concurrency); a local model server often serves one at a time',
  }),
  max_retries: z.coerce.number().int().min(0).max(10).optional().register(z.globalRegistry, {
    description: "The SDK's retries for this provider (default: completion.max_retries)",
  }),
  timeout_ms: z.coerce
    .number()
    .int()
    .min(1000)
    .optional()
    .register(z.globalRegistry, { description: 'SDK timeout per HTTP attempt (default: completion.timeout_ms)' }),
  max_tokens_param: z.enum(['max_tokens', 'max_completion_tokens']).optional().register(z.globalRegistry, {
    description:
      'The request field that carries max_tokens (default: max_completion_tokens for api.openai.com, which its reasoning models require; max_tokens elsewhere)',
  }),
});
export type ProviderConfig = z.infer<typeof providerSchema>;

/** An alias: a model, or a model with the models to try in order when its provider fails. */
export const aliasSchema = z.union([
  z.string().min(1),
  z.strictObject({
    model: z.string().min(1).register(z.globalRegistry, { description: 'The model tried first' }),
    fallbacks: z.array(z.string().min(1)).max(8).default([]).register(z.globalRegistry, {
      description: 'Tried in order when the one before is unreachable, overloaded or answers 5xx after its retries',
    }),
  }),
]);
export type AliasConfig = z.infer<typeof aliasSchema>;

export const configSchema = z.object({
  provider: z.enum(['anthropic']).default('anthropic').register(z.globalRegistry, {
    description: 'The provider of unprefixed model names (others are named <provider>/<model>)',
  }),
  providers: z
    .record(z.string().regex(PROVIDER_NAME_RE, 'a provider name is lowercase letters, digits, _ and -'), providerSchema)
    .default({})
    .register(z.globalRegistry, {
      description:
        'More providers, by name: {kind: openai, base_url, api_key_env?, max_concurrency?}; their models are named <name>/<model>',
    }),
  api_key_file: z.string().optional().register(z.globalRegistry, {
    description: 'A file holding the API key (default: the ANTHROPIC_API_KEY environment variable). Never logged.',
  }),
  base_url: z
    .string()
    .url()
    .optional()
    .register(z.globalRegistry, { description: 'API base URL (default: ANTHROPIC_BASE_URL, else the SDK default)' }),
  default_model: z
    .string()
    .min(1)
    .default('sonnet')
    .register(z.globalRegistry, { description: 'Model (or alias) when a request names none' }),
  models: z.record(z.string().min(1), aliasSchema).default({}).register(z.globalRegistry, {
    description:
      'Model aliases merged over opus/sonnet/haiku/fable: name -> model, or name -> {model, fallbacks: [model, ...]}',
  }),
  max_concurrency: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(8)
    .register(z.globalRegistry, { description: 'Calls in flight at once across all sessions' }),
  max_queue: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(10_000)
    .register(z.globalRegistry, { description: 'Queued requests beyond this answer OVERLOADED' }),
  default_max_tokens: z.coerce
    .number()
    .int()
    .min(1)
    .default(1024)
    .register(z.globalRegistry, { description: 'max_tokens when a request gives none' }),
  max_tokens_limit: z.coerce
    .number()
    .int()
    .min(1)
    .default(128_000)
    .register(z.globalRegistry, { description: 'Largest max_tokens a request may ask for' }),
  max_retries: z.coerce.number().int().min(0).max(10).default(2).register(z.globalRegistry, {
    description: "The SDK's own retries (429/529/5xx/connection, honouring retry-after); agentd adds none",
  }),
  timeout_ms: z.coerce
    .number()
    .int()
    .min(1000)
    .default(600_000)
    .register(z.globalRegistry, { description: 'SDK timeout per HTTP attempt' }),
  restart_policy: z.enum(['retry_once', 'fail']).default('retry_once').register(z.globalRegistry, {
    description: 'A call in flight when the daemon died: run it once more, or fail it with reason daemon_restart',
  }),
  count_tokens: z.enum(['auto', 'always', 'never']).default('auto').register(z.globalRegistry, {
    description:
      'Count input tokens with the API before reserving budget: auto = only when the byte bound does not fit the budget',
  }),
  token_flush_ms: z.coerce
    .number()
    .int()
    .min(1)
    .max(5000)
    .default(50)
    .register(z.globalRegistry, { description: 'completion:token events are coalesced over this window' }),
  token_flush_chars: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(4096)
    .register(z.globalRegistry, { description: '...or until this many characters are buffered' }),
  retention_hours: z.coerce
    .number()
    .min(0)
    .default(168)
    .register(z.globalRegistry, { description: 'Finished requests stay queryable by completion:status this long' }),
});

export type CompletionConfig = z.infer<typeof configSchema>;
