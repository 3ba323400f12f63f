/**
 * Prometheus metrics (prom-client, a registry of the gateway's own). Four sources, none of them an
 * import of another plugin or of the kernel: the router's counters from `system:metrics` (every
 * request by event, origin and code with latency histograms, socket subscribers' dropped events);
 * the gateway's own traffic (requests by event and code with latency,
 * in flight, clients, queues, dropped events); counters fed by the events plugins already emit
 * (completions and tokens by model, spend, sandbox execs, workflow runs); and gauges read at scrape
 * time from the plugins' status answers (probes.ts): health and plugin states, queues, budget
 * scopes, the sandbox pool, the graph's size, agents and workflow runs by state.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { ErrorCode } from '../../client/errors.js';
import type { EmittedEvent, PluginContext } from '../../daemon/plugin-api.js';
import type { Clients } from './clients.js';
import type { CallObserver, Transport } from './door.js';
import { list, num, obj, str, type Obj, type Probes, type Snapshot } from './probes.js';

type Labels = Record<string, string | number>;
type Setter = (value: number, labels?: Labels) => void;

/** Series per label set that a scrape-time gauge may have (budget ids, labels: unbounded otherwise). */
const MAX_SERIES = 200;
const PLUGIN_STATES = ['ok', 'degraded', 'failed', 'stopped', 'loading'];
/** Event × origin (× code) rows of the router's counters: bounded by the routes, but there are many. */
const MAX_ROUTER_SERIES = 5000;

export class Metrics implements CallObserver {
  readonly registry = new Registry();
  private readonly requests: Counter;
  private readonly latency: Histogram;
  private readonly inflight: Gauge;
  private readonly counters: Record<string, Counter> = {};
  private readonly histograms: Record<string, Histogram> = {};
  /** exec_id → language, from sandbox:exec_started to its exec_finished (bounded). */
  private readonly execLanguage = new Map<string, string>();

  constructor(
    private readonly probes: Probes,
    private readonly clients: Clients,
  ) {
    const registers = [this.registry];
    // The gateway runs inside the daemon: process_* and nodejs_* (event-loop lag, heap) are the daemon's.
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'agentd_gateway_requests_total',
      help: 'Requests made through the gateway (HTTP and WebSocket), by event, error code (OK when answered) and transport',
      labelNames: ['event', 'code', 'transport'],
      registers,
    });
    this.latency = new Histogram({
      name: 'agentd_gateway_request_duration_seconds',
      help: 'Time from a request reaching the gateway to its answer, by event and transport',
      labelNames: ['event', 'transport'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.inflight = new Gauge({
      name: 'agentd_gateway_requests_in_flight',
      help: 'Gateway requests waiting for their answer',
      registers,
    });
    this.gatewayGauges();
    this.eventCounters();
    this.probeGauges();
    this.routerSeries();
  }

  started(): void {
    this.inflight.inc();
  }

  finished(event: string, code: ErrorCode | 'OK', seconds: number, transport: Transport): void {
    this.inflight.dec();
    this.requests.inc({ event, code, transport });
    this.latency.observe({ event, transport }, seconds);
  }

  /** The exposition text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  // ---- the gateway's own clients --------------------------------------------------------------

  private gatewayGauges(): void {
    const registers = [this.registry];
    const clients = this.clients;
    new Gauge({
      name: 'agentd_gateway_clients',
      help: 'Open SSE streams and WebSockets',
      labelNames: ['transport'],
      registers,
      collect() {
        this.set({ transport: 'sse' }, clients.count('sse'));
        this.set({ transport: 'ws' }, clients.count('ws'));
      },
    });
    new Gauge({
      name: 'agentd_gateway_subscriptions',
      help: 'Subscriptions of open SSE and WebSocket clients',
      registers,
      collect() {
        this.set(clients.depth().feeds);
      },
    });
    new Gauge({
      name: 'agentd_gateway_client_queue_frames',
      help: 'Frames waiting for slow web clients: the sum over clients, and the deepest queue',
      labelNames: ['stat'],
      registers,
      collect() {
        const d = clients.depth();
        this.set({ stat: 'total' }, d.total);
        this.set({ stat: 'max' }, d.max);
      },
    });
    for (const [name, key, help] of [
      ['agentd_gateway_events_delivered_total', 'delivered', 'Frames sent to web clients'],
      [
        'agentd_gateway_events_dropped_total',
        'dropped',
        'Events dropped for web clients too slow to read them (they got monitor:dropped)',
      ],
    ] as const) {
      new Counter({
        name,
        help,
        labelNames: ['transport'],
        registers,
        collect() {
          this.reset();
          this.inc({ transport: 'sse' }, clients.stats.sse[key]);
          this.inc({ transport: 'ws' }, clients.stats.ws[key]);
        },
      });
    }
  }

  // ---- counters from emitted events -----------------------------------------------------------

  private counter(name: string, help: string, labelNames: string[]): Counter {
    return (this.counters[name] = new Counter({ name, help, labelNames, registers: [this.registry] }));
  }

  private histogram(name: string, help: string, labelNames: string[], buckets: number[]): Histogram {
    return (this.histograms[name] = new Histogram({ name, help, labelNames, buckets, registers: [this.registry] }));
  }

  private eventCounters(): void {
    this.counter(
      'agentd_completions_total',
      'Completion requests that ended, by model and outcome (completed, failed, cancelled)',
      ['model', 'outcome'],
    );
    this.counter('agentd_completion_errors_total', 'Failed completion requests by error code', ['code']);
    this.counter(
      'agentd_completion_tokens_total',
      'Tokens of completed requests by model and kind (input, output, cache_write, cache_read)',
      ['model', 'kind'],
    );
    this.counter('agentd_completion_cost_usd_total', 'Cost of completed requests by model, in USD', ['model']);
    this.histogram(
      'agentd_completion_duration_seconds',
      'Duration of completed requests by model',
      ['model'],
      [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
    );
    this.counter('agentd_spend_usd_total', 'Spend settled by the budget (budget:spent), by model, in USD', ['model']);
    this.counter('agentd_budget_alerts_total', 'Budget warnings and refusals', ['kind']);
    this.counter(
      'agentd_sandbox_execs_total',
      'Sandbox execs that ended, by language and outcome (ok, error, timeout, oom, cancelled)',
      ['language', 'outcome'],
    );
    this.histogram(
      'agentd_sandbox_exec_duration_seconds',
      'Duration of sandbox execs by language',
      ['language'],
      [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    );
    this.counter('agentd_kg_writes_total', 'Graph writes (kg:changed) by operation', ['op']);
    this.counter('agentd_agent_turns_total', 'Agent turns that ended, by outcome (reply, error)', ['outcome']);
    this.counter('agentd_agent_tool_calls_total', 'Tool calls made by agents, by tool', ['tool']);
    this.counter('agentd_workflow_runs_finished_total', 'Workflow runs that ended, by status', ['status']);
    this.counter('agentd_workflow_steps_total', 'Workflow steps that ended, by outcome (succeeded, skipped, failed)', [
      'outcome',
    ]);
    this.counter('agentd_plugin_errors_total', 'Plugin listeners that threw, by plugin', ['plugin']);
  }

  /** Subscribe the counters to the events they count; returns the unsubscribe functions. */
  watch(ctx: Pick<PluginContext, 'subscribe'>): Array<() => void> {
    const c = this.counters;
    const h = this.histograms;
    const on = (pattern: string, fn: (d: Obj, ev: EmittedEvent) => void) =>
      ctx.subscribe(pattern, (ev) => fn(ev.data, ev));
    const model = (d: Obj) => str(d.model) ?? 'unknown';
    return [
      on('completion:result', (d) => {
        const m = model(d);
        c.agentd_completions_total.inc({ model: m, outcome: 'completed' });
        const u = obj(d.usage) ?? {};
        for (const [kind, key] of [
          ['input', 'input_tokens'],
          ['output', 'output_tokens'],
          ['cache_write', 'cache_creation_input_tokens'],
          ['cache_read', 'cache_read_input_tokens'],
        ] as const) {
          const n = num(u[key]);
          if (n) c.agentd_completion_tokens_total.inc({ model: m, kind }, n);
        }
        const cost = num(d.cost_usd);
        if (cost) c.agentd_completion_cost_usd_total.inc({ model: m }, cost);
        const ms = num(d.duration_ms);
        if (ms !== undefined) h.agentd_completion_duration_seconds.observe({ model: m }, ms / 1000);
      }),
      on('completion:error', (d) => {
        c.agentd_completions_total.inc({ model: model(d), outcome: 'failed' });
        c.agentd_completion_errors_total.inc({ code: str(obj(d.error)?.code) ?? str(d.code) ?? 'unknown' });
      }),
      on('completion:cancelled', (d) => c.agentd_completions_total.inc({ model: model(d), outcome: 'cancelled' })),
      on('budget:spent', (d) => {
        const cost = num(d.cost_usd);
        if (cost) c.agentd_spend_usd_total.inc({ model: model(d) }, cost);
      }),
      on('budget:warning', () => c.agentd_budget_alerts_total.inc({ kind: 'warning' })),
      on('budget:exceeded', () => c.agentd_budget_alerts_total.inc({ kind: 'exceeded' })),
      on('sandbox:exec_started', (d) => {
        const id = str(d.exec_id);
        if (!id) return;
        if (this.execLanguage.size >= 10_000) this.execLanguage.delete(this.execLanguage.keys().next().value!);
        this.execLanguage.set(id, str(d.language) ?? 'unknown');
      }),
      on('sandbox:exec_finished', (d) => {
        const id = str(d.exec_id) ?? '';
        const language = this.execLanguage.get(id) ?? 'unknown';
        this.execLanguage.delete(id);
        const outcome =
          d.cancelled === true
            ? 'cancelled'
            : d.timed_out === true
              ? 'timeout'
              : d.oom_killed === true
                ? 'oom'
                : d.exit_code === 0
                  ? 'ok'
                  : 'error';
        c.agentd_sandbox_execs_total.inc({ language, outcome });
        const ms = num(d.duration_ms);
        if (ms !== undefined) h.agentd_sandbox_exec_duration_seconds.observe({ language }, ms / 1000);
      }),
      on('kg:changed', (d) => c.agentd_kg_writes_total.inc({ op: str(d.op) ?? 'unknown' })),
      on('agent:reply', () => c.agentd_agent_turns_total.inc({ outcome: 'reply' })),
      on('agent:error', () => c.agentd_agent_turns_total.inc({ outcome: 'error' })),
      on('agent:tool_call', (d) =>
        c.agentd_agent_tool_calls_total.inc({ tool: (str(d.name) ?? 'unknown').slice(0, 64) }),
      ),
      on('workflow:finished', (d) => c.agentd_workflow_runs_finished_total.inc({ status: str(d.status) ?? 'unknown' })),
      on('workflow:step_finished', (d) => c.agentd_workflow_steps_total.inc({ outcome: str(d.status) ?? 'succeeded' })),
      on('workflow:step_failed', (d) => {
        if (d.will_retry !== true) c.agentd_workflow_steps_total.inc({ outcome: 'failed' });
      }),
      on('plugin:error', (d) => c.agentd_plugin_errors_total.inc({ plugin: str(d.plugin) ?? 'unknown' })),
    ];
  }

  // ---- the router's own counters (system:metrics) ---------------------------------------------

  /**
   * Every request the router answered (socket clients, the gateway's, plugins' nested ones), by
   * event, origin and code, and its latency histogram, as the kernel keeps them: the series are
   * bounded by the daemon's routes (other names are counted as `other`).
   */
  private routerSeries(): void {
    this.snap(
      'agentd_requests_total',
      "Requests the router answered, by event, origin (client: a socket or gateway client; plugin: a plugin's own nested request) and code (OK when answered)",
      ['event', 'origin', 'code'],
      (s, set) => {
        for (const r of requestRows(s).rows)
          for (const [code, n] of Object.entries(r.codes)) set(n, { event: r.event, origin: r.origin, code });
      },
      'counter',
      MAX_ROUTER_SERIES,
    );
    const probes = this.probes;
    const name = 'agentd_request_duration_seconds';
    const help =
      "Time from the router's dispatch of a request to its answer, by event and origin (waiting for admission not included)";
    // prom-client's Histogram observes values one by one; this one is the kernel's, already bucketed.
    const histogram = {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      async get() {
        const { rows, bounds } = requestRows(await probes.snapshot());
        const values: Array<{ metricName: string; labels: Labels; value: number }> = [];
        for (const r of rows.slice(0, MAX_ROUTER_SERIES)) {
          const labels = { event: r.event, origin: r.origin };
          bounds.forEach((le, i) =>
            values.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: num(r.buckets[i]) ?? 0 }),
          );
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: r.count });
          values.push({ metricName: `${name}_sum`, labels, value: r.sum_s });
          values.push({ metricName: `${name}_count`, labels, value: r.count });
        }
        return { name, help, type: 'histogram', values, aggregator: 'sum' };
      },
    };
    this.registry.registerMetric(histogram as unknown as Metric);
    const socket = (s: Snapshot) => obj(s.answers.metrics?.socket);
    this.snap(
      'agentd_socket_events_dropped_total',
      'Events socket subscribers lost for not reading them (the oldest were dropped)',
      [],
      (s, set) => set(num(socket(s)?.events_dropped) ?? NaN),
      'counter',
    );
    this.snap(
      'agentd_socket_dropped_notices_total',
      'monitor:dropped frames sent to socket subscribers, each telling one of them which events it lost',
      [],
      (s, set) => set(num(socket(s)?.dropped_notices) ?? NaN),
      'counter',
    );
  }

  // ---- gauges read at scrape time -------------------------------------------------------------

  private snap(
    name: string,
    help: string,
    labelNames: string[],
    fill: (s: Snapshot, set: Setter) => void,
    kind: 'gauge' | 'counter' = 'gauge',
    maxSeries = MAX_SERIES,
  ): void {
    const probes = this.probes;
    const registers = [this.registry];
    async function collect(this: Gauge | Counter): Promise<void> {
      const s = await probes.snapshot();
      this.reset();
      let series = 0;
      fill(s, (value, labels) => {
        if (series++ >= maxSeries || !Number.isFinite(value)) return;
        if (this instanceof Gauge) labels ? this.set(labels, value) : this.set(value);
        else labels ? this.inc(labels, value) : this.inc(value);
      });
    }
    if (kind === 'counter') new Counter({ name, help, labelNames, registers, collect });
    else new Gauge({ name, help, labelNames, registers, collect });
  }

  private probeGauges(): void {
    const health = (s: Snapshot) => s.answers.health;
    this.snap(
      'agentd_probe_success',
      'Whether the status event behind a group of metrics answered at the last scrape',
      ['probe'],
      (s, set) => {
        for (const [p, ok] of Object.entries(s.ok)) set(ok ? 1 : 0, { probe: p });
      },
    );
    this.snap('agentd_healthy', 'The daemon is healthy (no failed plugin, not shutting down)', [], (s, set) =>
      set(health(s)?.healthy === true ? 1 : 0),
    );
    this.snap('agentd_uptime_seconds', 'Seconds since the daemon started', [], (s, set) =>
      set(num(health(s)?.uptime_s) ?? NaN),
    );
    this.snap('agentd_connections', 'Socket connections', [], (s, set) => set(num(health(s)?.connections) ?? NaN));
    this.snap('agentd_subscribers', 'Router subscribers: socket subscriptions and plugin listeners', [], (s, set) =>
      set(num(health(s)?.subscribers) ?? NaN),
    );
    this.snap(
      'agentd_events_total',
      'Events the router emitted since start (its seq)',
      [],
      (s, set) => set(num(obj(health(s)?.events)?.seq) ?? NaN),
      'counter',
    );
    this.snap(
      'agentd_socket_requests_total',
      'Requests received on the Unix socket since start',
      [],
      (s, set) => set(num(health(s)?.requests) ?? NaN),
      'counter',
    );
    this.snap(
      'agentd_plugin_status',
      "Each plugin's state: 1 for the state it is in",
      ['plugin', 'status'],
      (s, set) => {
        for (const [plugin, p] of Object.entries(obj(health(s)?.plugins) ?? {})) {
          const st = str(obj(p)?.status);
          for (const status of PLUGIN_STATES) set(st === status ? 1 : 0, { plugin, status });
        }
      },
    );
    this.snap('agentd_completion_queue', 'Completion requests queued and running', ['state'], (s, set) => {
      const d = s.answers.completion;
      if (!d) return;
      set(num(d.queued) ?? NaN, { state: 'queued' });
      set(num(d.running) ?? NaN, { state: 'running' });
    });
    for (const [name, field, help] of [
      ['agentd_budget_spent_usd', 'spent_usd', 'Spend in each budget scope and period, in USD'],
      [
        'agentd_budget_reserved_usd',
        'reserved_usd',
        'Reserved (in-flight) spend in each budget scope and period, in USD',
      ],
      ['agentd_budget_limit_usd', 'limit_usd', 'The limit of each budget scope and period that has one, in USD'],
    ] as const) {
      this.snap(name, help, ['scope', 'id', 'period'], (s, set) => {
        for (const row of list(s.answers.budget, 'scopes')) {
          const o = obj(row);
          const v = num(o?.[field]);
          if (o && v !== undefined)
            set(v, { scope: str(o.scope) ?? 'unknown', id: str(o.id) ?? '', period: str(o.period) ?? 'total' });
        }
      });
    }
    this.snap('agentd_sandbox_engine_up', 'The Docker engine answers', [], (s, set) => {
      const e = obj(s.answers.sandbox?.engine);
      if (e) set(e.reachable === true ? 1 : 0);
    });
    this.snap(
      'agentd_sandbox_pool',
      "Warm sandbox containers: the pool's size and those ready",
      ['state'],
      (s, set) => {
        const p = obj(s.answers.sandbox?.pool);
        if (!p) return;
        set(num(p.size) ?? NaN, { state: 'size' });
        set(num(p.ready) ?? NaN, { state: 'ready' });
      },
    );
    this.snap('agentd_sandbox_execs', 'Sandbox execs running and queued', ['state'], (s, set) => {
      const d = s.answers.sandbox;
      if (!d) return;
      set(num(d.running_execs) ?? NaN, { state: 'running' });
      set(num(d.queued_execs) ?? NaN, { state: 'queued' });
    });
    this.snap('agentd_sandbox_sessions', 'Live sandbox sessions', [], (s, set) => {
      const d = s.answers.sandbox;
      if (d) set(num(d.sessions) ?? (Array.isArray(d.sessions) ? d.sessions.length : NaN));
    });
    this.snap('agentd_kg_nodes', 'Nodes in the knowledge graph', [], (s, set) => set(num(s.answers.kg?.nodes) ?? NaN));
    this.snap('agentd_kg_edges', 'Edges in the knowledge graph', [], (s, set) => set(num(s.answers.kg?.edges) ?? NaN));
    this.snap('agentd_kg_nodes_by_label', 'Nodes in the knowledge graph by label', ['label'], (s, set) => {
      for (const [label, n] of Object.entries(obj(s.answers.kg?.labels) ?? {})) set(num(n) ?? NaN, { label });
    });
    this.snap('agentd_agents', 'Agents (the newest thousand) by status', ['status'], (s, set) =>
      byStatus(list(s.answers.agent, 'agents'), set),
    );
    this.snap('agentd_workflow_runs', 'Workflow runs (the newest thousand) by status', ['status'], (s, set) =>
      byStatus(list(s.answers.workflow, 'runs'), set),
    );
  }
}

/** A request row of system:metrics. */
interface RequestRow {
  event: string;
  origin: string;
  count: number;
  codes: Record<string, number>;
  sum_s: number;
  buckets: number[];
}

function requestRows(s: Snapshot): { rows: RequestRow[]; bounds: number[] } {
  const m = s.answers.metrics;
  const bounds = Array.isArray(m?.latency_buckets_s) ? (m.latency_buckets_s as number[]) : [];
  const rows = list(m, 'requests').filter((r): r is RequestRow => {
    const o = obj(r);
    return (
      o !== undefined &&
      typeof o.event === 'string' &&
      typeof o.origin === 'string' &&
      Array.isArray(o.buckets) &&
      obj(o.codes) !== undefined
    );
  });
  return { rows, bounds };
}

function byStatus(rows: unknown[], set: Setter): void {
  const counts = new Map<string, number>();
  for (const r of rows) {
    const st = str(obj(r)?.status) ?? 'unknown';
    counts.set(st, (counts.get(st) ?? 0) + 1);
  }
  for (const [status, n] of counts) set(n, { status });
}
