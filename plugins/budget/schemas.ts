/** Event and config schemas of the budget plugin; the catalog and system:discover are generated from them. */
import { z } from 'zod';
import { modelPriceSchema } from './prices.js';
import { PERIODS, SCOPES } from './periods.js';

const id = z.string().min(1).max(200);
const scope = z.enum(SCOPES).register(z.globalRegistry, {
  description:
    'global (everything), agent (one agent_id), session (one session_id) or workflow (one workflow run: everything the run causes)',
});
const period = z
  .enum(PERIODS)
  .register(z.globalRegistry, { description: 'total (all time), daily or monthly (UTC calendar); default total' });
const tokenCount = z.number().int().nonnegative().max(100_000_000);

export const configSchema = z.object({
  prices_file: z.string().optional().register(z.globalRegistry, {
    description: 'A YAML price file merged over the shipped plugins/budget/prices.yaml',
  }),
  prices: z
    .record(z.string().min(1), modelPriceSchema)
    .default({})
    .register(z.globalRegistry, { description: 'Inline prices per model, USD per million tokens; override the files' }),
  reconcile: z.enum(['charge', 'release']).default('charge').register(z.globalRegistry, {
    description:
      'What to do with a reservation whose call was lost in a crash: charge its worst case as estimated spend (safe) or release it',
  }),
  reservation_ttl_s: z.coerce
    .number()
    .int()
    .min(10)
    .max(7 * 86_400)
    .default(3600)
    .register(z.globalRegistry, { description: 'A reservation not settled within this time is reconciled' }),
  limits: z
    .array(
      z.object({
        scope,
        id: id.optional(),
        period: period.default('total'),
        limit_usd: z.number().finite().nonnegative().optional(),
        limit_tokens: tokenCount.optional(),
      }),
    )
    .default([])
    .register(z.globalRegistry, { description: 'Limits applied at every start (budget:set changes them at run time)' }),
});
export type BudgetConfig = z.infer<typeof configSchema>;

export const setSchema = z
  .object({
    scope: scope,
    id: id
      .optional()
      .register(z.globalRegistry, { description: 'The agent_id, session_id or workflow run_id; omitted for global' }),
    limit_usd: z
      .number()
      .finite()
      .nonnegative()
      .nullable()
      .optional()
      .register(z.globalRegistry, { description: 'Limit in USD; null removes it' }),
    limit_tokens: tokenCount
      .nullable()
      .optional()
      .register(z.globalRegistry, { description: 'Limit in tokens (input + output + cache); null removes it' }),
    period: period.default('total'),
  })
  .superRefine((v, ctx) => {
    if (v.scope === 'global' && v.id !== undefined)
      ctx.addIssue({ code: 'custom', path: ['id'], message: 'global scope takes no id' });
    if (v.scope !== 'global' && v.id === undefined)
      ctx.addIssue({ code: 'custom', path: ['id'], message: `${v.scope} scope needs an id` });
    if (v.limit_usd === undefined && v.limit_tokens === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['limit_usd'],
        message: 'give limit_usd and/or limit_tokens (null removes one)',
      });
  });

export const statusSchema = z
  .object({
    scope: scope.optional(),
    id: id.optional().register(z.globalRegistry, {
      description: 'agent_id, session_id or run_id when scope is agent, session or workflow',
    }),
  })
  .superRefine((v, ctx) => {
    if (v.scope && v.scope !== 'global' && v.id === undefined)
      ctx.addIssue({ code: 'custom', path: ['id'], message: `${v.scope} scope needs an id` });
    if (v.id !== undefined && (v.scope === undefined || v.scope === 'global'))
      ctx.addIssue({ code: 'custom', path: ['scope'], message: 'id needs scope agent, session or workflow' });
  });

export const ledgerSchema = z.object({
  request_id: id.optional().register(z.globalRegistry, { description: 'Only entries of this request' }),
  agent_id: id.optional().register(z.globalRegistry, { description: 'Only entries of this agent' }),
  session_id: id.optional().register(z.globalRegistry, { description: 'Only entries of this session' }),
  workflow_id: id.optional().register(z.globalRegistry, { description: 'Only entries of this workflow run' }),
  model: id.optional().register(z.globalRegistry, { description: 'Only entries for this model' }),
  kind: z.enum(['reserve', 'commit', 'release', 'charge']).optional().register(z.globalRegistry, {
    description: 'reserve, commit (actual spend), release, charge (estimated spend of a call lost in a crash)',
  }),
  since: z.number().nonnegative().optional().register(z.globalRegistry, { description: 'Unix seconds, inclusive' }),
  until: z.number().nonnegative().optional().register(z.globalRegistry, { description: 'Unix seconds, exclusive' }),
  limit: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .register(z.globalRegistry, { description: 'Page size (newest first)' }),
  cursor: z
    .number()
    .int()
    .positive()
    .optional()
    .register(z.globalRegistry, { description: 'next_cursor of the previous page' }),
});

export const pricesSchema = z.object({
  model: id.optional().register(z.globalRegistry, { description: 'Only this model' }),
});

export const usageSchema = z.object({
  input_tokens: tokenCount.describe('Uncached input tokens'),
  output_tokens: tokenCount.describe('Output tokens'),
  cache_creation_input_tokens: tokenCount
    .nullable()
    .optional()
    .register(z.globalRegistry, { description: 'Tokens written to the prompt cache' }),
  cache_read_input_tokens: tokenCount
    .nullable()
    .optional()
    .register(z.globalRegistry, { description: 'Tokens read from the prompt cache' }),
  cache_creation: z
    .object({
      ephemeral_5m_input_tokens: tokenCount.nullable().optional(),
      ephemeral_1h_input_tokens: tokenCount.nullable().optional(),
    })
    .nullable()
    .optional()
    .register(z.globalRegistry, { description: 'Cache writes split by TTL, as the API reports them' }),
});

const scopeRef = {
  agent_id: id.optional().register(z.globalRegistry, { description: 'The agent the call is for (agent scope)' }),
  session_id: id
    .optional()
    .register(z.globalRegistry, { description: 'The conversation the call belongs to (session scope)' }),
  workflow_id: id.optional().register(z.globalRegistry, {
    description:
      'The workflow run the call belongs to (workflow scope); default: the run the request was made for, from its causality context',
  }),
};

export const reserveSchema = z.object({
  request_id: id.describe('The call this reservation is for'),
  attempt: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(1)
    .register(z.globalRegistry, { description: 'Attempt number; each attempt is settled on its own' }),
  holder: z
    .string()
    .min(1)
    .max(100)
    .default('unknown')
    .register(z.globalRegistry, { description: 'Who holds it (a plugin name); used to reconcile after a crash' }),
  model: id.describe('Model id, priced from the price table'),
  input_tokens: tokenCount.describe('Counted input tokens, or a bound never below the count'),
  max_tokens: z
    .number()
    .int()
    .min(1)
    .max(10_000_000)
    .register(z.globalRegistry, { description: 'The most output the call may produce' }),
  cache_ttl: z.enum(['none', '5m', '1h']).default('none').register(z.globalRegistry, {
    description: 'Prompt caching the call asks for (cache writes cost more than input)',
  }),
  ttl_s: z
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .optional()
    .register(z.globalRegistry, { description: 'Reconcile the reservation if not settled within this time' }),
  notify: z.boolean().default(true).register(z.globalRegistry, {
    description: 'Emit budget:exceeded when refused (false when the caller retries with an exact count)',
  }),
  ...scopeRef,
});

export const checkSchema = z.object({ model: id.describe('Model id'), ...scopeRef });

export const commitSchema = z.object({
  request_id: id.describe('The call being settled'),
  attempt: z.number().int().min(1).max(100).default(1).register(z.globalRegistry, { description: 'Attempt number' }),
  model: id.optional().register(z.globalRegistry, { description: 'Defaults to the reserved model' }),
  usage: usageSchema.describe('The usage the provider reported (input, output, cache write, cache read tokens)'),
  estimated: z
    .boolean()
    .default(false)
    .register(z.globalRegistry, { description: 'The usage is an estimate (e.g. a call aborted mid-stream)' }),
  reason: z.string().max(200).optional().register(z.globalRegistry, { description: 'Why, for the ledger' }),
  ...scopeRef,
});

export const releaseSchema = z.object({
  request_id: id.describe('The call whose reservation to drop'),
  attempt: z
    .number()
    .int()
    .min(1)
    .max(100)
    .optional()
    .register(z.globalRegistry, { description: 'Only this attempt (default all)' }),
  reason: z.string().max(200).default('released').register(z.globalRegistry, { description: 'Why, for the ledger' }),
});

export const reconcileSchema = z.object({
  holder: z
    .string()
    .min(1)
    .max(100)
    .register(z.globalRegistry, { description: 'The holder whose reservations to reconcile' }),
  keep: z
    .array(id)
    .max(1_000_000)
    .default([])
    .register(z.globalRegistry, { description: 'Request ids the holder still has in flight' }),
});

const alertBase = {
  scope: scope,
  id: z
    .string()
    .nullable()
    .register(z.globalRegistry, { description: 'agent_id, session_id or run_id; null for global' }),
  period: period,
  dimension: z.enum(['usd', 'tokens']).register(z.globalRegistry, { description: 'Which limit' }),
  percent: z.number().register(z.globalRegistry, { description: 'Spent as a percentage of the limit' }),
  spent_usd: z.number().register(z.globalRegistry, { description: 'Spent in the period' }),
  limit_usd: z.number().nullable().register(z.globalRegistry, { description: 'USD limit' }),
  spent_tokens: z.number().register(z.globalRegistry, { description: 'Tokens spent in the period' }),
  limit_tokens: z.number().nullable().register(z.globalRegistry, { description: 'Token limit' }),
  request_id: z.string().nullable().register(z.globalRegistry, { description: 'The call that crossed the line' }),
};

export const warningEvent = z.object({
  ...alertBase,
  threshold: z.number().register(z.globalRegistry, { description: '50, 75 or 90' }),
});
export const exceededEvent = z.object({
  ...alertBase,
  reason: z
    .enum(['limit_reached', 'reservation_refused'])
    .register(z.globalRegistry, { description: 'Spend reached the limit, or a call was refused' }),
});
export const spentEvent = z.object({
  request_id: z.string().register(z.globalRegistry, { description: 'The call' }),
  model: z.string().register(z.globalRegistry, { description: 'Model' }),
  cost_usd: z.number().register(z.globalRegistry, { description: 'What it cost' }),
  tokens: z.number().register(z.globalRegistry, { description: 'Tokens it used' }),
  agent_id: z.string().nullable().register(z.globalRegistry, { description: 'Agent' }),
  session_id: z.string().nullable().register(z.globalRegistry, { description: 'Session' }),
  estimated: z.boolean().register(z.globalRegistry, { description: 'An estimate (call lost in a crash or aborted)' }),
  price_known: z.boolean().register(z.globalRegistry, {
    description:
      "false: the model has no price (another provider's unpriced model), so it cost 0; its tokens still count",
  }),
});

// Answers. Loose objects: fields may be added, never removed or retyped.
const scopeStatus = z.looseObject({
  scope: z.string(),
  period: z.string(),
  spent_usd: z.number(),
  reserved_usd: z.number(),
  limit_usd: z.number().nullable(),
});
export const responses = {
  set: z.looseObject({
    limit: z.looseObject({ scope: z.string(), period: z.string() }).nullish(),
    status: z.array(scopeStatus),
  }),
  status: z.looseObject({ scopes: z.array(scopeStatus) }),
  ledger: z.looseObject({ entries: z.array(z.looseObject({ seq: z.number().int() })) }),
  prices: z.looseObject({ prices: z.record(z.string(), z.looseObject({ input: z.number(), output: z.number() })) }),
  check: z.object({ ok: z.literal(true) }),
  reserve: z.looseObject({
    request_id: z.string(),
    attempt: z.number().int(),
    reserved_usd: z.number(),
    reserved_tokens: z.number(),
    expires_at: z.number(),
  }),
  commit: z.looseObject({
    request_id: z.string(),
    cost_usd: z.number(),
    tokens: z.number(),
    already_committed: z.boolean(),
  }),
  release: z.looseObject({ request_id: z.string(), released: z.unknown() }),
  reconcile: z.looseObject({ charged: z.number().int(), released: z.number().int(), policy: z.string() }),
};
