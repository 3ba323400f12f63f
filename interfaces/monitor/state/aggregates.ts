/**
 * What the panels derive from the stream: completions in flight, sandbox execs, agent activity,
 * budget alerts. Applied per event within a batch, copying each map at most once per batch.
 */
import type { LogEntry, StreamEvent, StreamState } from './stream.js';

export type CompletionState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface CompletionRow {
  requestId: string;
  status: CompletionState;
  sessionId?: string;
  agentId?: string;
  model?: string;
  tokens: number;
  /** Token events were counted for it (its result settles the count against the skipped estimate). */
  streamed?: boolean;
  costUsd?: number;
  error?: string;
  started: number;
  updated: number;
}

export interface ExecRow {
  execId: string;
  language?: string;
  sessionId?: string;
  running: boolean;
  exitCode?: number;
  durationMs?: number;
  timedOut?: boolean;
  started: number;
  updated: number;
}

export interface AgentActivity {
  agentId: string;
  lastEvent: string;
  tool?: string;
  turn?: number;
  status?: string;
  updated: number;
}

/**
 * Token events come through a rate-bounded subscription: the ones delivered are counted per
 * request; the skipped ones only by number, so they are estimated at the delivered ones' average
 * and added to the total (tokens/s stays right) but to no row. That estimate is `unattributed`
 * until the streamed requests' results settle their counts, so it is not counted twice.
 */
export interface TokenEstimate {
  /** Token events counted, and the tokens estimated from their text. */
  events: number;
  tokens: number;
  unattributed: number;
}

const MAX_ROWS = 200;
const MAX_ALERTS = 20;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Copy-on-first-write view of the aggregate maps for one batch. */
export class Aggregates {
  completions: Record<string, CompletionRow>;
  totals: StreamState['completionTotals'];
  execs: Record<string, ExecRow>;
  execTotals: StreamState['execTotals'];
  agents: Record<string, AgentActivity>;
  alerts: LogEntry[];
  estimate: TokenEstimate;
  tokensChanged = false;
  private touched = { completions: false, execs: false, agents: false, alerts: false, estimate: false };

  constructor(
    s: StreamState,
    private readonly toEntry: (ev: StreamEvent) => LogEntry,
  ) {
    this.completions = s.completions;
    this.totals = s.completionTotals;
    this.execs = s.execs;
    this.execTotals = s.execTotals;
    this.agents = s.agents;
    this.alerts = s.alerts;
    this.estimate = s.tokenEstimate;
  }

  /**
   * Apply one event. `countTokens`: a `completion:token` counts its tokens (it came through the
   * token subscription, or history); `tokensOnly`: it was applied already, this is its token frame.
   */
  apply(ev: StreamEvent, countTokens = true, tokensOnly = false): void {
    const ns = ev.event.slice(0, ev.event.indexOf(':'));
    if (ns === 'completion') {
      if (ev.event !== 'completion:token' || countTokens) this.completion(ev);
      if (tokensOnly) return;
    } else if (ns === 'sandbox') this.sandbox(ev);
    else if (ns === 'budget' && (ev.event === 'budget:warning' || ev.event === 'budget:exceeded')) this.alert(ev);
    const agentId = ev.context?.agent_id ?? str(ev.data.agent_id);
    if (agentId && (ns === 'agent' || ev.context?.agent_id)) this.agent(agentId, ev);
  }

  private completion(ev: StreamEvent): void {
    const id = str(ev.data.request_id);
    if (!id) return;
    if (!this.touched.completions) {
      this.completions = { ...this.completions };
      this.totals = { ...this.totals };
      this.touched.completions = true;
    }
    const prev = this.completions[id];
    const row: CompletionRow = prev
      ? { ...prev, updated: ev.timestamp }
      : { requestId: id, status: 'queued', tokens: 0, started: ev.timestamp, updated: ev.timestamp };
    row.sessionId = str(ev.data.session_id) ?? row.sessionId;
    row.agentId = str(ev.data.agent_id) ?? ev.context?.agent_id ?? row.agentId;
    row.model = str(ev.data.model) ?? row.model;
    const action = ev.event.slice('completion:'.length);
    switch (action) {
      case 'queued':
        break;
      case 'started':
        row.status = 'running';
        if (!prev || prev.status === 'queued') this.totals.started++;
        break;
      case 'token': {
        // Token events are coalesced text chunks: estimate ~4 characters a token until the result's usage settles it.
        const n = Math.max(1, Math.round((str(ev.data.text)?.length ?? 4) / 4));
        row.status = 'running';
        row.tokens += n;
        row.streamed = true;
        this.totals.tokens += n;
        this.tokensChanged = true;
        this.touchEstimate();
        this.estimate.events++;
        this.estimate.tokens += n;
        break;
      }
      case 'result': {
        row.status = 'completed';
        const usage = ev.data.usage as Record<string, unknown> | undefined;
        const out = num(usage?.output_tokens);
        if (out !== undefined && out > row.tokens) {
          // Streamed token events undercount (or are absent, or were skipped): settle on the reported usage,
          // less what the skipped estimate already added to the total.
          let add = out - row.tokens;
          if (row.streamed && this.estimate.unattributed > 0) {
            this.touchEstimate();
            const taken = Math.min(add, this.estimate.unattributed);
            this.estimate.unattributed -= taken;
            add -= taken;
          }
          this.totals.tokens += add;
          row.tokens = out;
          this.tokensChanged = true;
        }
        row.costUsd = num(ev.data.cost_usd) ?? row.costUsd;
        this.totals.completed++;
        break;
      }
      case 'error':
        row.status = 'failed';
        row.error =
          str((ev.data.error as Record<string, unknown> | undefined)?.message) ??
          str(ev.data.message) ??
          str(ev.data.code) ??
          'error';
        this.totals.failed++;
        break;
      case 'cancelled':
        row.status = 'cancelled';
        this.totals.cancelled++;
        break;
      default:
        return;
    }
    this.completions[id] = row;
    this.completions = trim(this.completions, (r) => r.status === 'queued' || r.status === 'running');
  }

  /** `count` token events the token subscription skipped: estimated at the average of those it delivered. */
  skippedTokens(count: number): void {
    if (count <= 0) return;
    if (!this.touched.completions) {
      this.completions = { ...this.completions };
      this.totals = { ...this.totals };
      this.touched.completions = true;
    }
    this.touchEstimate();
    const perEvent = this.estimate.events ? this.estimate.tokens / this.estimate.events : 1;
    const n = Math.round(count * perEvent);
    this.totals.tokens += n;
    this.estimate.unattributed += n;
    this.tokensChanged = true;
  }

  private touchEstimate(): void {
    if (this.touched.estimate) return;
    this.estimate = { ...this.estimate };
    this.touched.estimate = true;
  }

  private sandbox(ev: StreamEvent): void {
    const id = str(ev.data.exec_id);
    if (!id || (ev.event !== 'sandbox:exec_started' && ev.event !== 'sandbox:exec_finished')) return;
    if (!this.touched.execs) {
      this.execs = { ...this.execs };
      this.execTotals = { ...this.execTotals };
      this.touched.execs = true;
    }
    const prev = this.execs[id];
    if (ev.event === 'sandbox:exec_started') {
      this.execs[id] = {
        execId: id,
        language: str(ev.data.language),
        sessionId: str(ev.data.session_id),
        running: true,
        started: ev.timestamp,
        updated: ev.timestamp,
      };
      this.execTotals.started++;
    } else {
      const exit = num(ev.data.exit_code);
      this.execs[id] = {
        ...(prev ?? { execId: id, started: ev.timestamp }),
        running: false,
        exitCode: exit,
        durationMs: num(ev.data.duration_ms),
        timedOut: ev.data.timed_out === true,
        updated: ev.timestamp,
      } as ExecRow;
      this.execTotals.finished++;
      if (exit !== 0 || ev.data.timed_out === true) this.execTotals.failed++;
      if (ev.data.timed_out === true) this.execTotals.timedOut++;
    }
    this.execs = trim(this.execs, (r) => r.running);
  }

  private agent(agentId: string, ev: StreamEvent): void {
    if (!this.touched.agents) {
      this.agents = { ...this.agents };
      this.touched.agents = true;
    }
    const prev = this.agents[agentId];
    const tool = str(ev.data.tool) ?? str(ev.data.tool_name) ?? str(ev.data.name);
    const row: AgentActivity = { ...(prev ?? { agentId }), lastEvent: ev.event, updated: ev.timestamp };
    // The tool in use: from a tool call until the agent's next step (its result, a reply, an error).
    // What the tool itself causes (a sandbox exec, a graph write) runs inside the call; and those
    // events may arrive only as a sample, which must not decide what the panel shows.
    if (ev.event === 'agent:tool_call') row.tool = tool;
    else if (ev.event.startsWith('agent:')) row.tool = undefined;
    if (ev.event === 'agent:turn_started') row.status = 'running';
    if (ev.event === 'agent:reply' || ev.event === 'agent:error') row.status = 'idle';
    const turn = num(ev.data.turn);
    if (turn !== undefined) row.turn = turn;
    if (ev.event === 'agent:terminated') row.status = 'terminated';
    this.agents[agentId] = row;
    this.agents = trim(this.agents, () => false);
  }

  private alert(ev: StreamEvent): void {
    this.alerts = [...this.alerts, this.toEntry(ev)].slice(-MAX_ALERTS);
    this.touched.alerts = true;
  }

  result(): Partial<StreamState> {
    return {
      completions: this.completions,
      completionTotals: this.totals,
      execs: this.execs,
      execTotals: this.execTotals,
      agents: this.agents,
      alerts: this.alerts,
      tokenEstimate: this.estimate,
    };
  }
}

/** Keep the maps bounded: live rows always, then the most recently updated. */
function trim<T extends { updated: number }>(rows: Record<string, T>, live: (r: T) => boolean): Record<string, T> {
  const keys = Object.keys(rows);
  if (keys.length <= MAX_ROWS) return rows;
  const sorted = keys.sort(
    (a, b) => Number(live(rows[b])) - Number(live(rows[a])) || rows[b].updated - rows[a].updated,
  );
  const out: Record<string, T> = {};
  for (const k of sorted.slice(0, MAX_ROWS)) out[k] = rows[k];
  return out;
}

/** After a restart the old daemon's execs are gone (it kills them on the way down, or died with them). */
export function settleExecs(rows: Record<string, ExecRow>, now: number): Record<string, ExecRow> {
  const out: Record<string, ExecRow> = {};
  for (const [k, r] of Object.entries(rows)) out[k] = r.running ? { ...r, running: false, updated: now } : r;
  return out;
}
