/**
 * budget: limits per scope (global, agent, session) in USD and/or tokens over total/daily/monthly
 * periods, priced from a YAML table, enforced by reservations that make concurrent calls unable to
 * overspend together. The completion plugin reserves before every call and settles after.
 */
import { unixSeconds } from '../../client/units.js';
import path from 'node:path';
import {
  DaemonError,
  definePlugin,
  GroupCommit,
  prepareYamlFiles,
  type PluginContext,
} from '../../daemon/plugin-api.js';
import { BudgetLedger, type Alert } from './ledger.js';
import { PriceTable, providerOf, toUsd } from './prices.js';
import { MIGRATIONS } from './store.js';
import {
  checkSchema,
  commitSchema,
  configSchema,
  ledgerSchema,
  pricesSchema,
  reconcileSchema,
  releaseSchema,
  reserveSchema,
  responses,
  setSchema,
  statusSchema,
  type BudgetConfig,
} from './schemas.js';

/** The plugin's instance. */
interface Budget {
  ctx: PluginContext<BudgetConfig>;
  cfg: BudgetConfig;
  ledger: BudgetLedger;
  gc: GroupCommit;
  sweep: NodeJS.Timeout;
}

function emitAll(budget: Budget, alerts: Alert[]): void {
  for (const a of alerts) {
    budget.ctx.emit(a.event, a.data);
    budget.ctx.log.warn(
      { event: a.event, scope: a.data.scope, id: a.data.id, percent: a.data.percent },
      'budget threshold crossed',
    );
  }
}

async function loadPrices(ctx: PluginContext<BudgetConfig>, cfg: BudgetConfig): Promise<PriceTable> {
  const files = [path.join(ctx.paths.root, 'plugins', 'budget', 'prices.yaml')];
  if (cfg.prices_file) files.push(path.resolve(ctx.paths.root, cfg.prices_file));
  await prepareYamlFiles(files);
  return PriceTable.load(files, cfg.prices);
}

const usd = (n: number | null | undefined): number | null => (n === null || n === undefined ? null : n);

/** The model an alias stands for, asked of the completion plugin (which owns aliases); null when it is not one. */
async function resolveAlias(ctx: PluginContext, name: string): Promise<string | null> {
  try {
    const r = await ctx.request<{ aliases: Record<string, string | { model: string }> }>(
      'completion:models',
      {},
      { timeoutMs: 2000 },
    );
    const a = r.aliases[name];
    return typeof a === 'string' ? a : (a?.model ?? null);
  } catch {
    return null; // no completion plugin: no aliases
  }
}

export default definePlugin({
  name: 'budget',
  version: 1,
  namespaces: ['budget'],
  description: 'Spend limits per scope and period, priced per model, enforced by atomic reservations.',
  configSchema,
  publishes: {
    'budget:warning': 'Spend in a scope crossed 50, 75 or 90 % of a limit (once per threshold and period).',
    'budget:exceeded': 'A limit was reached, or a call was refused because its worst case did not fit.',
    'budget:spent': 'A call was settled: its actual (or estimated) cost.',
  },

  async start(ctx): Promise<Budget> {
    const cfg = ctx.config;
    ctx.migrate(MIGRATIONS);
    const ledger = new BudgetLedger(ctx.db, await loadPrices(ctx, cfg), { reservationTtlS: cfg.reservation_ttl_s });
    const gc = GroupCommit.for(ctx.db);
    for (const l of cfg.limits)
      ledger.setLimit(l.scope, l.scope === 'global' ? null : (l.id ?? null), l.period, l.limit_usd, l.limit_tokens);
    const sweep = setInterval(() => {
      void gc
        .run(() => ledger.expire(cfg.reconcile))
        .then((r) => {
          if (r.charged + r.released > 0)
            ctx.log.warn({ charged: r.charged, released: r.released }, 'expired reservations reconciled');
          emitAll(budget, r.alerts);
        })
        .catch((err: unknown) => ctx.log.error({ err }, 'reservation sweep failed'));
    }, 60_000);
    sweep.unref();
    const budget: Budget = { ctx, cfg, ledger, gc, sweep };
    ctx.log.info(
      { models: Object.keys(ledger.getPrices().list()).length, reservations: ledger.reservationCount() },
      'budget started',
    );
    return budget;
  },

  stop(budget) {
    clearInterval(budget.sweep);
    budget.gc.flush();
  },

  fullState: {
    kept: {
      tables: ['budget_*'],
      reason:
        'money spent stays spent: the ledger, usage and alerts record real spend and the limits guard it; a restore rolls back what the spend bought, never the spend',
    },
  },

  health: (budget) => ({
    reservations: budget.ledger.reservationCount(),
    group_commits: budget.gc.stats.commits,
    ops: budget.gc.stats.ops,
  }),

  events: {
    'budget:set': {
      summary: 'Set (or remove with null) a USD and/or token limit for a scope and period.',
      description:
        'A limit covers all spend of its scope in its period, including spend from before it was set. Spend counts input, output and cache tokens.',
      schema: setSchema,
      errors: ['INVALID_DATA'],
      response: responses.set,
      async handler(d, budget) {
        const row = await budget.gc.run(() =>
          budget.ledger.setLimit(d.scope, d.id ?? null, d.period, d.limit_usd, d.limit_tokens),
        );
        budget.ctx.log.info(
          { scope: d.scope, id: d.id, period: d.period, limit_usd: d.limit_usd, limit_tokens: d.limit_tokens },
          'budget limit set',
        );
        return {
          limit: row && {
            scope: row.scope,
            id: row.scope_id || null,
            period: row.period,
            limit_usd: usd(row.limit_nanos === null ? null : toUsd(row.limit_nanos)),
            limit_tokens: row.limit_tokens,
          },
          status: budget.ledger.status({ scope: d.scope, ...(d.id ? { id: d.id } : {}) }),
        };
      },
    },

    'budget:status': {
      summary: 'Spent, reserved, limit, remaining and percent per scope and period (USD and tokens).',
      schema: statusSchema,
      response: responses.status,
      handler(d, budget) {
        return { scopes: budget.ledger.status(d) };
      },
    },

    'budget:ledger': {
      summary:
        'The durable ledger of reservations, commits, releases and charges, newest first, filterable and paginated.',
      schema: ledgerSchema,
      response: responses.ledger,
      handler(d, budget) {
        return budget.ledger.ledgerPage(d);
      },
    },

    'budget:prices': {
      summary:
        'The price table in USD per million tokens (input, output, cache_write, cache_write_1h, cache_read), each with its provider.',
      description:
        'A model of another provider (<provider>/<model>) without an entry is shown at 0 with price_known: false: its calls cost 0 and count their tokens.',
      schema: pricesSchema,
      errors: ['NOT_FOUND'],
      response: responses.prices,
      async handler(d, budget) {
        const table = budget.ledger.getPrices();
        if (d.model) {
          const p = table.lookup(d.model);
          if (p) return { prices: { [d.model]: { ...p.price, provider: providerOf(d.model), price_known: p.known } } };
          // An alias (haiku, sonnet, one of completion.models) is priced as the model it stands for.
          const model = await resolveAlias(budget.ctx, d.model);
          const q = model === null ? null : table.lookup(model);
          if (!q || model === null)
            throw new DaemonError(
              'NOT_FOUND',
              `no price for model "${d.model}"; add one under budget.prices in agentd.yaml`,
              { model: d.model },
            );
          return {
            prices: { [model]: { ...q.price, provider: providerOf(model), price_known: q.known } },
            alias: { [d.model]: model },
          };
        }
        return {
          prices: Object.fromEntries(
            Object.entries(table.list()).map(([m, p]) => [m, { ...p, provider: providerOf(m), price_known: true }]),
          ),
        };
      },
    },

    'budget:check': {
      summary: 'Pre-flight: the model is priced and no applicable limit is used up (nothing is reserved).',
      schema: checkSchema,
      errors: ['INVALID_DATA', 'BUDGET_EXCEEDED'],
      response: responses.check,
      handler(d, budget, call) {
        const r = budget.ledger.check(d.model, {
          ...d,
          workflow_id: d.workflow_id ?? call.context.workflow_id ?? null,
        });
        return { ok: true, price_known: r.price_known };
      },
    },

    'budget:reserve': {
      summary: "Reserve a call's worst case (input + max_tokens output) in every applicable scope, atomically.",
      description:
        'Fails with BUDGET_EXCEEDED, changing nothing, when any applicable limit cannot cover spent + reserved + this call. Idempotent per (request_id, attempt).',
      schema: reserveSchema,
      emits: ['budget:exceeded'],
      errors: ['INVALID_DATA', 'BUDGET_EXCEEDED', 'CONFLICT'],
      response: responses.reserve,
      async handler(d, budget, call) {
        try {
          const { reservation } = await budget.gc.run(() =>
            budget.ledger.reserve({ ...d, workflow_id: d.workflow_id ?? call.context.workflow_id ?? null }),
          );
          return {
            request_id: reservation.request_id,
            attempt: reservation.attempt,
            reserved_usd: toUsd(reservation.nanos),
            reserved_tokens: reservation.tokens,
            expires_at: unixSeconds(reservation.expires_at),
          };
        } catch (err) {
          if (err instanceof DaemonError && err.code === 'BUDGET_EXCEEDED' && err.details && d.notify) {
            const x = err.details;
            budget.ctx.emit('budget:exceeded', {
              scope: x.scope,
              id: x.id,
              period: x.period,
              dimension: x.dimension,
              percent: x.limit_usd
                ? Math.round(((Number(x.spent_usd) + Number(x.reserved_usd)) / Number(x.limit_usd)) * 10000) / 100
                : 100,
              spent_usd: x.spent_usd,
              limit_usd: x.limit_usd,
              spent_tokens: x.spent_tokens,
              limit_tokens: x.limit_tokens,
              request_id: x.request_id,
              reason: 'reservation_refused',
            });
            budget.ctx.log.info(
              { request_id: d.request_id, session_id: d.session_id, agent_id: d.agent_id, scope: x.scope },
              'reservation refused',
            );
          }
          throw err;
        }
      },
    },

    'budget:commit': {
      summary:
        'Settle a call with its actual usage: the reservation becomes spend. Idempotent per (request_id, attempt).',
      schema: commitSchema,
      emits: ['budget:spent', 'budget:warning', 'budget:exceeded'],
      errors: ['INVALID_DATA', 'NOT_FOUND'],
      response: responses.commit,
      async handler(d, budget, call) {
        const r = await budget.gc.run(() =>
          budget.ledger.commit({ ...d, workflow_id: d.workflow_id ?? call.context.workflow_id ?? null }),
        );
        if (!r.already) {
          budget.ctx.emit('budget:spent', {
            request_id: d.request_id,
            model: r.model,
            cost_usd: r.cost_usd,
            tokens: r.tokens,
            agent_id: d.agent_id ?? null,
            session_id: d.session_id ?? null,
            estimated: d.estimated,
            price_known: r.price_known,
          });
          emitAll(budget, r.alerts);
        }
        return {
          request_id: d.request_id,
          cost_usd: r.cost_usd,
          tokens: r.tokens,
          price_known: r.price_known,
          already_committed: r.already,
        };
      },
    },

    'budget:release': {
      summary: 'Drop the reservation of a call that failed or was cancelled before spending.',
      schema: releaseSchema,
      response: responses.release,
      async handler(d, budget) {
        const r = await budget.gc.run(() => budget.ledger.release(d.request_id, d.attempt, d.reason));
        return { request_id: d.request_id, released: r.released };
      },
    },

    'budget:reconcile': {
      summary:
        "Settle a holder's reservations for requests it no longer has in flight (after a crash), per budget.reconcile.",
      schema: reconcileSchema,
      emits: ['budget:spent', 'budget:warning', 'budget:exceeded'],
      response: responses.reconcile,
      async handler(d, budget) {
        const r = await budget.gc.run(() =>
          budget.ledger.reconcile(d.holder, new Set(d.keep), budget.cfg.reconcile, 'daemon_restart'),
        );
        if (r.charged + r.released > 0)
          budget.ctx.log.warn(
            { holder: d.holder, charged: r.charged, released: r.released },
            'leaked reservations reconciled',
          );
        emitAll(budget, r.alerts);
        return { charged: r.charged, released: r.released, policy: budget.cfg.reconcile };
      },
    },
  },
});
