/** Event schemas of the completion plugin (completion:* and conversation:*). */
import { z } from 'zod';

const id = z.string().min(1).max(200);
export const REQUEST_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** A content block is passed through to the API as is (text, image, tool_use, tool_result, ...). */
const block = z.looseObject({
  type: z
    .string()
    .min(1)
    .register(z.globalRegistry, { description: 'Block type, e.g. text, image, tool_use, tool_result' }),
});

export const messageSchema = z.object({
  role: z.enum(['user', 'assistant']).register(z.globalRegistry, { description: 'user or assistant' }),
  content: z
    .union([z.string().min(1), z.array(block).min(1)])
    .register(z.globalRegistry, { description: 'Text, or a list of content blocks' }),
});

export const completionInput = z
  .object({
    prompt: z
      .string()
      .min(1)
      .max(10_000_000)
      .optional()
      .register(z.globalRegistry, { description: 'A single user message (give this or messages)' }),
    messages: z
      .array(messageSchema)
      .min(1)
      .max(10_000)
      .optional()
      .register(z.globalRegistry, { description: 'Messages to append to the conversation (give this or prompt)' }),
    model: id.optional().register(z.globalRegistry, {
      description: 'Model id or alias (completion.models); default completion.default_model',
    }),
    system: z
      .union([z.string(), z.array(block)])
      .optional()
      .register(z.globalRegistry, { description: 'System prompt (text or text blocks)' }),
    session_id: id.optional().register(z.globalRegistry, {
      description: 'Conversation: continues its history; one request at a time per session, FIFO',
    }),
    agent_id: id
      .optional()
      .register(z.globalRegistry, { description: 'The agent this call is for (budget scope, events)' }),
    request_id: z
      .string()
      .regex(REQUEST_ID_RE, 'letters, digits and ._:@- (1-128, starting alphanumeric)')
      .optional()
      .register(z.globalRegistry, {
        description:
          'Your own id for this request, its idempotency key across crashes: the same request again joins the one queued or running, or returns its recorded result; other input under an id in use is CONFLICT',
      }),
    max_tokens: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .optional()
      .register(z.globalRegistry, { description: 'Output limit (default completion.default_max_tokens)' }),
    stream: z
      .boolean()
      .default(false)
      .register(z.globalRegistry, { description: 'Emit text deltas as completion:token events (coalesced)' }),
    temperature: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .register(z.globalRegistry, { description: 'Sampling temperature' }),
    top_p: z.number().min(0).max(1).optional().register(z.globalRegistry, { description: 'Nucleus sampling' }),
    top_k: z.number().int().min(0).optional().register(z.globalRegistry, { description: 'Top-k sampling' }),
    stop_sequences: z
      .array(z.string().min(1))
      .max(16)
      .optional()
      .register(z.globalRegistry, { description: 'Stop sequences' }),
    tools: z
      .array(z.looseObject({ name: z.string().min(1) }))
      .max(512)
      .optional()
      .register(z.globalRegistry, { description: 'Tool definitions, passed to the API as is' }),
    tool_choice: z
      .looseObject({ type: z.string() })
      .optional()
      .register(z.globalRegistry, { description: 'Tool choice, passed as is' }),
    thinking: z
      .looseObject({ type: z.string() })
      .optional()
      .register(z.globalRegistry, { description: 'Extended/adaptive thinking config, passed as is' }),
    metadata: z.looseObject({}).optional().register(z.globalRegistry, { description: 'API metadata, passed as is' }),
  })
  .superRefine((v, ctx) => {
    if (v.prompt === undefined && v.messages === undefined)
      ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'give prompt or messages' });
    if (v.prompt !== undefined && v.messages !== undefined)
      ctx.addIssue({ code: 'custom', path: ['messages'], message: 'give prompt or messages, not both' });
    if (v.prompt !== undefined && v.prompt.trim() === '')
      ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'prompt is blank' });
    if (v.messages && v.messages[0]?.role !== 'user')
      ctx.addIssue({
        code: 'custom',
        path: ['messages', 0, 'role'],
        message: 'the first new message must be from the user',
      });
  });
export type CompletionInput = z.output<typeof completionInput>;

export const cancelSchema = z.object({
  request_id: z.string().min(1).max(200).register(z.globalRegistry, { description: 'The request to cancel' }),
});
export const statusSchema = z.object({
  request_id: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .register(z.globalRegistry, { description: "One request's state and outcome; without it, the queues" }),
});

export const modelsSchema = z.object({});
export const conversationListSchema = z.object({
  agent_id: id.optional().register(z.globalRegistry, { description: 'Only conversations of this agent' }),
  limit: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .register(z.globalRegistry, { description: 'Page size, most recently updated first' }),
  before: z.number().positive().optional().register(z.globalRegistry, {
    description: 'updated_at (Unix seconds) of the last item of the previous page: next_before of the previous answer',
  }),
});
export const conversationGetSchema = z.object({ session_id: id.describe('The conversation') });
export const conversationExportSchema = z.object({
  session_id: id.describe('The conversation'),
  format: z
    .enum(['markdown', 'json'])
    .default('markdown')
    .register(z.globalRegistry, { description: 'markdown or json' }),
});

// ---- emitted events (documentation and tests) -------------------------------------------------------

const who = {
  request_id: z.string().register(z.globalRegistry, { description: 'The request' }),
  session_id: z.string().nullable().register(z.globalRegistry, { description: 'Its conversation' }),
  agent_id: z.string().nullable().register(z.globalRegistry, { description: 'Its agent' }),
};
export const usageOut = z.object({
  input_tokens: z.number().register(z.globalRegistry, { description: 'Uncached input tokens' }),
  output_tokens: z.number().register(z.globalRegistry, { description: 'Output tokens' }),
  cache_creation_input_tokens: z
    .number()
    .register(z.globalRegistry, { description: 'Tokens written to the prompt cache' }),
  cache_read_input_tokens: z.number().register(z.globalRegistry, { description: 'Tokens read from the prompt cache' }),
});
export const resultEvent = z.object({
  ...who,
  text: z.string().register(z.globalRegistry, { description: 'The text blocks joined' }),
  content: z
    .array(z.record(z.string(), z.unknown()))
    .register(z.globalRegistry, { description: 'Content blocks as the API returned them (text, tool_use, ...)' }),
  stop_reason: z
    .string()
    .nullable()
    .register(z.globalRegistry, { description: 'end_turn, max_tokens, tool_use, stop_sequence, ...' }),
  usage: usageOut,
  cost_usd: z.number().nullable().register(z.globalRegistry, {
    description: 'Cost from the price table (null if the budget could not be told; settled at next start)',
  }),
  price_known: z.boolean().nullable().register(z.globalRegistry, {
    description: 'false: the model has no price, so it cost 0 (its tokens still count against token limits)',
  }),
  model: z.string().register(z.globalRegistry, {
    description:
      'The model that answered, as named in agentd (<provider>/<model> for providers other than Anthropic); with fallbacks, the one that answered',
  }),
  provider: z.string().register(z.globalRegistry, {
    description: 'The provider that answered (anthropic, or a completion.providers name)',
  }),
  provider_model: z.string().register(z.globalRegistry, {
    description: "The provider's own name for the model that answered (e.g. a dated snapshot)",
  }),
  usage_estimated: z.boolean().optional().register(z.globalRegistry, {
    description: 'true: the provider reported no usage; the reserved input and the answer size were charged',
  }),
  fallback_from: z
    .array(z.object({ model: z.string(), code: z.string(), message: z.string() }))
    .optional()
    .register(z.globalRegistry, {
      description: 'Models of the alias tried before the one that answered, and why each failed',
    }),
  duration_ms: z.number().register(z.globalRegistry, { description: 'Provider call duration' }),
  attempt: z.number().register(z.globalRegistry, { description: '1, or 2 when retried after a daemon restart' }),
});
export const errorEvent = z.object({
  ...who,
  error: z
    .object({
      code: z.string().register(z.globalRegistry, { description: 'Error code from the catalogue' }),
      message: z.string().register(z.globalRegistry, { description: 'What happened' }),
      retryable: z.boolean().register(z.globalRegistry, { description: 'Whether trying again may succeed' }),
      reason: z.string().optional().register(z.globalRegistry, { description: 'e.g. daemon_restart' }),
    })
    .register(z.globalRegistry, { description: 'The failure' }),
});
export const startedEvent = z.object({
  ...who,
  model: z.string().register(z.globalRegistry, { description: 'Model (the first of its alias)' }),
  provider: z.string().register(z.globalRegistry, { description: "The model's provider" }),
  attempt: z.number().register(z.globalRegistry, { description: 'Attempt number' }),
});
export const fallbackEvent = z.object({
  ...who,
  from: z.string().register(z.globalRegistry, { description: 'The model that failed' }),
  to: z.string().register(z.globalRegistry, { description: 'The model asked next' }),
  error: z
    .object({ code: z.string(), message: z.string() })
    .register(z.globalRegistry, { description: 'Why the first failed' }),
});
export const tokenEvent = z.object({
  ...who,
  index: z
    .number()
    .register(z.globalRegistry, { description: 'Sequence number of this chunk within the request, from 0' }),
  text: z.string().register(z.globalRegistry, { description: 'Text deltas coalesced since the previous chunk' }),
});
export const cancelledEvent = z.object({
  ...who,
  was: z.enum(['queued', 'running']).register(z.globalRegistry, { description: 'State when cancelled' }),
});

// Answers. Loose objects: fields may be added, never removed or retyped.
const resultOut = z.looseObject({
  request_id: z.string(),
  session_id: z.string().nullable(),
  text: z.string(),
  content: z.array(z.unknown()),
  stop_reason: z.string().nullable(),
  usage: usageOut.loose(),
  cost_usd: z.number().nullable(),
  model: z.string(),
  duration_ms: z.number(),
});
export const responses = {
  async: z.looseObject({
    request_id: z.string(),
    status: z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']),
    position: z.number().int(),
  }),
  request: resultOut,
  cancel: z.looseObject({ request_id: z.string() }),
  status: z.union([
    z.looseObject({
      request_id: z.string(),
      status: z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']),
    }),
    z.looseObject({ queued: z.number().int(), running: z.number().int() }),
  ]),
  conversationList: z.looseObject({
    conversations: z.array(z.looseObject({ session_id: z.string() })),
    next_before: z.number().nullable(),
  }),
  conversationGet: z.looseObject({ session_id: z.string(), messages: z.array(z.looseObject({ role: z.string() })) }),
  conversationExport: z.looseObject({ session_id: z.string(), format: z.string(), content: z.string() }),
  conversationDelete: z.looseObject({ session_id: z.string(), deleted: z.literal(true) }),
  models: z.looseObject({
    default_model: z.string(),
    aliases: z.record(z.string(), z.looseObject({ model: z.string(), fallbacks: z.array(z.string()) })),
  }),
};
