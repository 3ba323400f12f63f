/**
 * Budget accounting: limits, reservations, settlement. Every mutating method is synchronous and
 * meant to run inside one SQLite transaction (the plugin wraps it in a group commit), which is what
 * makes a reservation atomic across all the scopes it touches: better-sqlite3 runs one transaction at a
 * time on the one thread, so no other reservation can slip between the check and the insert.
 */
import { unixSeconds, unixSecondsToMs } from '../../client/units.js';
import type Database from 'better-sqlite3';
import { DaemonError } from '../../daemon/plugin-api.js';
import { allBuckets, bucketOf, type Period, type Scope, PERIODS } from './periods.js';
import { fromUsd, PriceTable, toUsd, totalTokens, type CacheTtl, type ModelPrice, type Usage } from './prices.js';
import { statements, type LedgerRow, type LimitRow, type ReservationRow, type Statements } from './store.js';

export const THRESHOLDS = [50, 75, 90] as const;

export interface ScopeRef {
  agent_id?: string | null;
  session_id?: string | null;
  workflow_id?: string | null;
}

export interface ReserveInput extends ScopeRef {
  request_id: string;
  attempt?: number;
  holder?: string;
  model: string;
  /** Counted input tokens, or a bound that is never below the count. */
  input_tokens: number;
  max_tokens: number;
  cache_ttl?: CacheTtl;
  ttl_s?: number;
}

export interface CommitInput extends ScopeRef {
  request_id: string;
  attempt?: number;
  model?: string;
  usage: Usage;
  estimated?: boolean;
  reason?: string;
}

/** An event to emit once the transaction that produced it is durable. */
export interface Alert {
  event: 'budget:warning' | 'budget:exceeded';
  data: Record<string, unknown>;
}

export interface ScopeStatus {
  scope: Scope;
  id: string | null;
  period: Period;
  spent_usd: number;
  reserved_usd: number;
  limit_usd: number | null;
  remaining_usd: number | null;
  percent: number | null;
  spent_tokens: number;
  reserved_tokens: number;
  limit_tokens: number | null;
  remaining_tokens: number | null;
  percent_tokens: number | null;
}

export type ReconcilePolicy = 'charge' | 'release';

interface Applicable {
  scope: Scope;
  scopeId: string;
}

const scopesOf = (r: ScopeRef): Applicable[] => {
  const out: Applicable[] = [{ scope: 'global', scopeId: '' }];
  if (r.agent_id) out.push({ scope: 'agent', scopeId: r.agent_id });
  if (r.session_id) out.push({ scope: 'session', scopeId: r.session_id });
  if (r.workflow_id) out.push({ scope: 'workflow', scopeId: r.workflow_id });
  return out;
};

const pct = (used: number, limit: number | null): number | null =>
  limit === null ? null : limit === 0 ? (used > 0 ? Infinity : 0) : Math.round((used / limit) * 10000) / 100;

export class BudgetLedger {
  private readonly stmts: Statements;

  constructor(
    private readonly db: Database.Database,
    private prices: PriceTable,
    private readonly opts: { reservationTtlS: number; now?: () => number } = { reservationTtlS: 3600 },
  ) {
    this.stmts = statements(db);
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  setPrices(p: PriceTable): void {
    this.prices = p;
  }

  getPrices(): PriceTable {
    return this.prices;
  }

  /** The price of `model` (`known: false` for an unpriced model of another provider: it costs 0), or INVALID_DATA saying how to price it. */
  priceOf(model: string): { price: ModelPrice; known: boolean } {
    const p = this.prices.lookup(model);
    if (!p) {
      throw new DaemonError(
        'INVALID_DATA',
        `model "${model}" has no price, so its spend cannot be budgeted; add it under budget.prices in agentd.yaml (input, output, cache_write, cache_read in USD per million tokens)`,
        {
          issues: [{ path: ['model'], message: 'no price for this model' }],
          model,
        },
      );
    }
    return p;
  }

  // ---- limits -------------------------------------------------------------------------------------

  setLimit(
    scope: Scope,
    id: string | null,
    period: Period,
    limitUsd: number | null | undefined,
    limitTokens: number | null | undefined,
  ): LimitRow | null {
    const scopeId = id ?? '';
    this.limitsCache.clear();
    const existing = this.stmts.limitsFor.all(scope, scopeId).find((l) => l.period === period);
    const nanos =
      limitUsd === undefined ? (existing?.limit_nanos ?? null) : limitUsd === null ? null : fromUsd(limitUsd);
    const tokens = limitTokens === undefined ? (existing?.limit_tokens ?? null) : limitTokens;
    if (nanos === null && tokens === null) {
      this.stmts.deleteLimit.run(scope, scopeId, period);
      return null;
    }
    this.stmts.upsertLimit.run({
      scope,
      scope_id: scopeId,
      period,
      limit_nanos: nanos,
      limit_tokens: tokens,
      now: this.now(),
    });
    return this.stmts.limitsFor.all(scope, scopeId).find((l) => l.period === period) ?? null;
  }

  /**
   * Limits change only through setLimit, and every call reads them several times: kept in memory,
   * dropped whenever setLimit runs (also when its transaction then rolls back: the next read re-reads).
   */
  private readonly limitsCache = new Map<string, LimitRow[]>();

  private limitsOf(a: Applicable): LimitRow[] {
    const key = `${a.scope}\0${a.scopeId}`;
    let rows = this.limitsCache.get(key);
    if (!rows) {
      rows = this.stmts.limitsFor.all(a.scope, a.scopeId);
      if (this.limitsCache.size >= 10_000) this.limitsCache.clear();
      this.limitsCache.set(key, rows);
    }
    return rows;
  }

  /** Add spend to every bucket of every scope in one statement (one native call instead of up to nine). */
  private addUsage(scopes: Applicable[], buckets: string[], nanos: number, tokens: number): void {
    const n = scopes.length * buckets.length;
    let stmt = this.usageStmts.get(n);
    if (!stmt) {
      stmt = this.db
        .prepare(`INSERT INTO budget_usage (scope, scope_id, bucket, nanos, tokens) VALUES ${Array.from({ length: n }, () => '(?, ?, ?, ?, ?)').join(', ')}
        ON CONFLICT (scope, scope_id, bucket) DO UPDATE SET nanos = nanos + excluded.nanos, tokens = tokens + excluded.tokens`);
      this.usageStmts.set(n, stmt);
    }
    const args: unknown[] = [];
    for (const a of scopes) for (const b of buckets) args.push(a.scope, a.scopeId, b, nanos, tokens);
    stmt.run(...args);
  }

  private readonly usageStmts = new Map<number, Database.Statement>();

  private reservedOf(a: Applicable): { nanos: number; tokens: number } {
    if (a.scope === 'global') return this.stmts.reservedGlobal.get()!;
    if (a.scope === 'agent') return this.stmts.reservedAgent.get(a.scopeId)!;
    if (a.scope === 'workflow') return this.stmts.reservedWorkflow.get(a.scopeId)!;
    return this.stmts.reservedSession.get(a.scopeId)!;
  }

  private spentOf(a: Applicable, period: Period, at: number): { nanos: number; tokens: number } {
    return this.stmts.usage.get(a.scope, a.scopeId, bucketOf(period, at)) ?? { nanos: 0, tokens: 0 };
  }

  // ---- reservations -------------------------------------------------------------------------------

  /**
   * Cheap pre-flight for accepting queued work: the model is priced and no applicable limit is already
   * used up. The real check is `reserve`, when the call is about to run.
   */
  check(model: string, ref: ScopeRef): { price_known: boolean } {
    const { known } = this.priceOf(model);
    const at = this.now();
    for (const a of scopesOf(ref)) {
      for (const l of this.limitsOf(a)) {
        const spent = this.spentOf(a, l.period as Period, at);
        const reserved = this.reservedOf(a);
        if (l.limit_nanos !== null && spent.nanos + reserved.nanos >= l.limit_nanos) {
          throw this.exceeded(a, l, spent, reserved, 0, 0, 'usd', null);
        }
        if (l.limit_tokens !== null && spent.tokens + reserved.tokens >= l.limit_tokens) {
          throw this.exceeded(a, l, spent, reserved, 0, 0, 'tokens', null);
        }
      }
    }
    return { price_known: known };
  }

  /** Reserve the worst case of a call in every applicable scope, or throw BUDGET_EXCEEDED changing nothing. */
  reserve(input: ReserveInput): { reservation: ReservationRow; alerts: Alert[]; existing: boolean } {
    const attempt = input.attempt ?? 1;
    const prior = this.stmts.getReservation.get(input.request_id, attempt);
    if (prior) return { reservation: prior, alerts: [], existing: true };
    if (this.stmts.committed.get(input.request_id, attempt)) {
      throw new DaemonError('CONFLICT', `request ${input.request_id} attempt ${attempt} was already settled`, {
        request_id: input.request_id,
        attempt,
      });
    }
    const { price } = this.priceOf(input.model);
    const nanos = this.prices.worstCaseNanos(price, input.input_tokens, input.max_tokens, input.cache_ttl ?? 'none');
    const tokens = input.input_tokens + input.max_tokens;
    const at = this.now();
    for (const a of scopesOf(input)) {
      for (const l of this.limitsOf(a)) {
        const spent = this.spentOf(a, l.period as Period, at);
        const reserved = this.reservedOf(a);
        if (l.limit_nanos !== null && spent.nanos + reserved.nanos + nanos > l.limit_nanos) {
          const err = this.exceeded(a, l, spent, reserved, nanos, tokens, 'usd', input.request_id);
          return this.refuse(err);
        }
        if (l.limit_tokens !== null && spent.tokens + reserved.tokens + tokens > l.limit_tokens) {
          const err = this.exceeded(a, l, spent, reserved, nanos, tokens, 'tokens', input.request_id);
          return this.refuse(err);
        }
      }
    }
    const row: ReservationRow = {
      request_id: input.request_id,
      attempt,
      holder: input.holder ?? 'unknown',
      model: input.model,
      agent_id: input.agent_id ?? null,
      session_id: input.session_id ?? null,
      workflow_id: input.workflow_id ?? null,
      nanos,
      tokens,
      created_at: at,
      expires_at: at + (input.ttl_s ?? this.opts.reservationTtlS) * 1000,
    };
    this.stmts.insertReservation.run(row);
    this.ledger('reserve', row, { nanos, tokens, input_tokens: input.input_tokens, output_tokens: input.max_tokens });
    return { reservation: row, alerts: [], existing: false };
  }

  private refuse(err: DaemonError): never {
    // The exceeded alert must still be emitted although the caller's transaction rolls back; the plugin
    // reads it from the error's details.
    throw err;
  }

  private exceeded(
    a: Applicable,
    l: LimitRow,
    spent: { nanos: number; tokens: number },
    reserved: { nanos: number; tokens: number },
    nanos: number,
    tokens: number,
    dimension: 'usd' | 'tokens',
    requestId: string | null,
  ): DaemonError {
    const who = a.scope === 'global' ? 'the global' : `${a.scope} ${a.scopeId}'s`;
    const msg =
      dimension === 'usd'
        ? `${who} ${l.period} budget of $${toUsd(l.limit_nanos ?? 0)} cannot cover this call: spent $${toUsd(spent.nanos)}, reserved $${toUsd(reserved.nanos)}, this call needs up to $${toUsd(nanos)}`
        : `${who} ${l.period} token budget of ${l.limit_tokens} cannot cover this call: spent ${spent.tokens}, reserved ${reserved.tokens}, this call needs up to ${tokens}`;
    return new DaemonError('BUDGET_EXCEEDED', msg, {
      scope: a.scope,
      id: a.scopeId || null,
      period: l.period,
      dimension,
      request_id: requestId,
      limit_usd: l.limit_nanos === null ? null : toUsd(l.limit_nanos),
      spent_usd: toUsd(spent.nanos),
      reserved_usd: toUsd(reserved.nanos),
      requested_usd: toUsd(nanos),
      remaining_usd: l.limit_nanos === null ? null : toUsd(Math.max(0, l.limit_nanos - spent.nanos - reserved.nanos)),
      limit_tokens: l.limit_tokens,
      spent_tokens: spent.tokens,
      reserved_tokens: reserved.tokens,
      requested_tokens: tokens,
    });
  }

  /**
   * Settle a call with the usage it really had. Idempotent per (request_id, attempt): a repeat returns
   * the first settlement. Spend is recorded even without a reservation (it happened; it must count).
   */
  commit(input: CommitInput): {
    cost_usd: number;
    tokens: number;
    model: string | null;
    price_known: boolean;
    already: boolean;
    alerts: Alert[];
  } {
    const attempt = input.attempt ?? 1;
    const done = this.stmts.committed.get(input.request_id, attempt);
    if (done) {
      const m = input.model ?? done.model;
      return {
        cost_usd: toUsd(done.nanos),
        tokens: done.tokens,
        model: input.model ?? null,
        price_known: m ? this.prices.get(m) !== undefined : true,
        already: true,
        alerts: [],
      };
    }
    const res = this.stmts.getReservation.get(input.request_id, attempt);
    const model = input.model ?? res?.model;
    if (!model)
      throw new DaemonError(
        'NOT_FOUND',
        `no reservation for request ${input.request_id} and no model given to price it`,
        { request_id: input.request_id },
      );
    const { price, known } = this.priceOf(model);
    const nanos = this.prices.costNanos(price, input.usage);
    const tokens = totalTokens(input.usage);
    const ref: ScopeRef = {
      agent_id: input.agent_id ?? res?.agent_id ?? null,
      session_id: input.session_id ?? res?.session_id ?? null,
      workflow_id: input.workflow_id ?? res?.workflow_id ?? null,
    };
    if (res) this.stmts.deleteReservation.run(input.request_id, attempt);
    const alerts = this.spend(
      { request_id: input.request_id, attempt, holder: res?.holder ?? null, model, ...ref },
      nanos,
      tokens,
      'commit',
      {
        input_tokens: input.usage.input_tokens,
        output_tokens: input.usage.output_tokens,
        cache_write_tokens: input.usage.cache_creation_input_tokens ?? 0,
        cache_read_tokens: input.usage.cache_read_input_tokens ?? 0,
        estimated: input.estimated ? 1 : 0,
        reason: input.reason ?? null,
      },
    );
    return { cost_usd: toUsd(nanos), tokens, model, price_known: known, already: false, alerts };
  }

  /** Drop a reservation (the call failed before spending, or was cancelled before it started). */
  release(requestId: string, attempt: number | undefined, reason: string): { released: number } {
    const rows =
      attempt === undefined
        ? this.stmts.reservationsOf.all(requestId)
        : [this.stmts.getReservation.get(requestId, attempt)].filter((r): r is ReservationRow => !!r);
    for (const r of rows) {
      this.stmts.deleteReservation.run(r.request_id, r.attempt);
      this.ledger('release', r, { nanos: r.nanos, tokens: r.tokens, reason });
    }
    return { released: rows.length };
  }

  /**
   * Settle reservations whose holder no longer has the request in flight (a crash lost it). A call
   * interrupted mid-flight may well have been billed by the provider, and nobody knows how much, so
   * the safe default charges the reservation (its worst case) as estimated spend; `release` trusts luck.
   */
  reconcile(
    holder: string,
    keep: Set<string>,
    policy: ReconcilePolicy,
    reason: string,
  ): { charged: number; released: number; alerts: Alert[] } {
    return this.settleLeaked(
      this.stmts.reservationsByHolder.all(holder).filter((r) => !keep.has(r.request_id)),
      policy,
      reason,
    );
  }

  /** Reservations past their expiry: a holder that never settled (bug or crash of a foreign holder). */
  expire(policy: ReconcilePolicy): { charged: number; released: number; alerts: Alert[] } {
    return this.settleLeaked(this.stmts.expiredReservations.all(this.now()), policy, 'reservation_expired');
  }

  private settleLeaked(
    rows: ReservationRow[],
    policy: ReconcilePolicy,
    reason: string,
  ): { charged: number; released: number; alerts: Alert[] } {
    const alerts: Alert[] = [];
    let charged = 0;
    let released = 0;
    for (const r of rows) {
      this.stmts.deleteReservation.run(r.request_id, r.attempt);
      if (policy === 'charge') {
        alerts.push(...this.spend(r, r.nanos, r.tokens, 'charge', { estimated: 1, reason }));
        charged++;
      } else {
        this.ledger('release', r, { nanos: r.nanos, tokens: r.tokens, reason });
        released++;
      }
    }
    return { charged, released, alerts };
  }

  private spend(
    r:
      | Pick<ReservationRow, 'request_id' | 'attempt' | 'holder' | 'model' | 'agent_id' | 'session_id' | 'workflow_id'>
      | (ScopeRef & { request_id: string; attempt: number; holder: string | null; model: string }),
    nanos: number,
    tokens: number,
    kind: 'commit' | 'charge',
    extra: Partial<LedgerRow>,
  ): Alert[] {
    const at = this.now();
    const scopes = scopesOf(r);
    const before = scopes.map((a) =>
      this.limitsOf(a).map((l) => ({ a, l, spent: this.spentOf(a, l.period as Period, at) })),
    );
    this.addUsage(scopes, allBuckets(at), nanos, tokens);
    this.ledger(kind, r, { nanos, tokens, ...extra });
    const alerts: Alert[] = [];
    for (const { a, l, spent } of before.flat()) {
      const after = this.spentOf(a, l.period as Period, at);
      const bucket = bucketOf(l.period as Period, at);
      for (const [dim, lim, was, now] of [
        ['usd', l.limit_nanos, spent.nanos, after.nanos],
        ['tokens', l.limit_tokens, spent.tokens, after.tokens],
      ] as const) {
        if (lim === null || lim === undefined) continue;
        const p0 = pct(was, lim)!;
        const p1 = pct(now, lim)!;
        const base = {
          scope: a.scope,
          id: a.scopeId || null,
          period: l.period,
          dimension: dim,
          spent_usd: toUsd(after.nanos),
          limit_usd: l.limit_nanos === null ? null : toUsd(l.limit_nanos),
          spent_tokens: after.tokens,
          limit_tokens: l.limit_tokens,
          percent: p1,
          request_id: r.request_id,
        };
        for (const t of THRESHOLDS) {
          if (
            p1 >= t &&
            p0 < t &&
            this.stmts.insertAlert.run(a.scope, a.scopeId, l.period, bucket, dim, t, at).changes > 0
          ) {
            alerts.push({ event: 'budget:warning', data: { ...base, threshold: t } });
          }
        }
        if (
          p1 >= 100 &&
          p0 < 100 &&
          this.stmts.insertAlert.run(a.scope, a.scopeId, l.period, bucket, dim, 100, at).changes > 0
        ) {
          alerts.push({ event: 'budget:exceeded', data: { ...base, reason: 'limit_reached' } });
        }
      }
    }
    return alerts;
  }

  private ledger(
    kind: string,
    r: {
      request_id: string;
      attempt: number;
      holder?: string | null;
      model?: string | null;
      agent_id?: string | null;
      session_id?: string | null;
      workflow_id?: string | null;
    },
    extra: Partial<LedgerRow>,
  ): void {
    this.stmts.insertLedger.run({
      ts: this.now(),
      kind,
      request_id: r.request_id,
      attempt: r.attempt,
      holder: r.holder ?? null,
      model: r.model ?? null,
      agent_id: r.agent_id ?? null,
      session_id: r.session_id ?? null,
      workflow_id: r.workflow_id ?? null,
      input_tokens: extra.input_tokens ?? null,
      output_tokens: extra.output_tokens ?? null,
      cache_write_tokens: extra.cache_write_tokens ?? null,
      cache_read_tokens: extra.cache_read_tokens ?? null,
      tokens: extra.tokens ?? 0,
      nanos: extra.nanos ?? 0,
      estimated: extra.estimated ?? 0,
      reason: extra.reason ?? null,
    });
  }

  // ---- reads --------------------------------------------------------------------------------------

  /** Status per scope and period: every configured limit, plus the global total. */
  status(filter: { scope?: Scope; id?: string }): ScopeStatus[] {
    const at = this.now();
    const rows: Array<{ scope: Scope; scopeId: string; period: Period; limit: LimitRow | null }> = [];
    if (filter.scope) {
      const a = { scope: filter.scope, scopeId: filter.scope === 'global' ? '' : (filter.id ?? '') };
      const limits = this.limitsOf(a);
      if (limits.length === 0) rows.push({ ...a, period: 'total', limit: null });
      for (const l of limits) rows.push({ ...a, period: l.period as Period, limit: l });
    } else {
      const limits = this.stmts.allLimits.all();
      // The all-time global total is always there, whatever limits exist for other periods.
      if (!limits.some((l) => l.scope === 'global' && l.period === 'total'))
        rows.push({ scope: 'global', scopeId: '', period: 'total', limit: null });
      for (const l of limits)
        rows.push({ scope: l.scope as Scope, scopeId: l.scope_id, period: l.period as Period, limit: l });
    }
    return rows.map(({ scope, scopeId, period, limit }) => {
      const a = { scope, scopeId };
      const spent = this.spentOf(a, period, at);
      const reserved = this.reservedOf(a);
      const ln = limit?.limit_nanos ?? null;
      const lt = limit?.limit_tokens ?? null;
      return {
        scope,
        id: scopeId || null,
        period,
        spent_usd: toUsd(spent.nanos),
        reserved_usd: toUsd(reserved.nanos),
        limit_usd: ln === null ? null : toUsd(ln),
        remaining_usd: ln === null ? null : toUsd(Math.max(0, ln - spent.nanos - reserved.nanos)),
        percent: pct(spent.nanos, ln),
        spent_tokens: spent.tokens,
        reserved_tokens: reserved.tokens,
        limit_tokens: lt,
        remaining_tokens: lt === null ? null : Math.max(0, lt - spent.tokens - reserved.tokens),
        percent_tokens: pct(spent.tokens, lt),
      };
    });
  }

  ledgerPage(q: {
    request_id?: string;
    agent_id?: string;
    session_id?: string;
    workflow_id?: string;
    model?: string;
    kind?: string;
    since?: number;
    until?: number;
    limit: number;
    cursor?: number;
  }): { entries: Array<Record<string, unknown>>; next_cursor: number | null } {
    const where: string[] = [];
    const args: unknown[] = [];
    const eq = (col: string, v: unknown): void => {
      if (v !== undefined) {
        where.push(`${col} = ?`);
        args.push(v);
      }
    };
    eq('request_id', q.request_id);
    eq('agent_id', q.agent_id);
    eq('session_id', q.session_id);
    eq('workflow_id', q.workflow_id);
    eq('model', q.model);
    eq('kind', q.kind);
    // since/until are Unix seconds, like every time in an answer; the table keeps epoch ms.
    if (q.since !== undefined) (where.push('ts >= ?'), args.push(unixSecondsToMs(q.since)));
    if (q.until !== undefined) (where.push('ts < ?'), args.push(unixSecondsToMs(q.until)));
    if (q.cursor !== undefined) (where.push('seq < ?'), args.push(q.cursor));
    const sql = `SELECT * FROM budget_ledger ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, q.limit + 1) as LedgerRow[];
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    return {
      entries: page.map(({ nanos, estimated, ts, ...r }) => ({
        ...r,
        ts: unixSeconds(ts),
        usd: toUsd(nanos),
        estimated: estimated === 1,
      })),
      next_cursor: more ? page[page.length - 1]!.seq : null,
    };
  }

  reservationCount(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM budget_reservations').get() as { n: number }).n;
  }
}

export { PERIODS };
