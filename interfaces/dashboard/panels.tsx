/**
 * The TUI's panels in the browser: header, plugins, agents, completions, budget, sandbox, the
 * graph's counts and the live event log, each from the same view functions the terminal uses
 * (interfaces/monitor/state/views.ts), so both show the same figures.
 */
import { useState, type ReactNode } from 'react';
import type { Health, Probe } from '../monitor/hooks/use-daemon-poll.js';
import { clock, compact, duration, shortId, summarize, usd } from '../monitor/state/format.js';
import { parseFilter, type Filter } from '../monitor/state/patterns.js';
import { visibleLog, type StreamState } from '../monitor/state/stream.js';
import { agentViews, budgetViews, completionsView, kgView, pluginViews, sandboxView } from '../monitor/state/views.js';
import type { Snapshot } from './use-polls.js';

export function Panel(p: { title: string; right?: ReactNode; id: string; children: ReactNode; wide?: boolean }) {
  return (
    <section className={`panel${p.wide ? ' wide' : ''}`} id={p.id} data-panel={p.id}>
      <header>
        <h2>{p.title}</h2>
        {p.right !== undefined && <span className="right">{p.right}</span>}
      </header>
      <div className="body">{p.children}</div>
    </section>
  );
}

function Absent({ probe, name }: { probe: Probe; name: string }) {
  if (probe.absent) return <p className="muted">{name}: not loaded</p>;
  if (probe.error)
    return (
      <p className="warn">
        {probe.error.code}: {probe.error.message}
      </p>
    );
  return null;
}

export function HeaderBar({ health, state, up }: { health: Probe<Health>; state: StreamState; up: boolean }) {
  const h = health.data;
  const status = h?.status ?? (health.error ? 'unreachable' : 'connecting…');
  return (
    <div className="header-bar" data-testid="header">
      <strong>agentd</strong>
      <span className={`status ${status}`} data-testid="daemon-status">
        ● {status}
      </span>
      {h && (
        <>
          <span>up {duration(h.uptime_s ?? 0)}</span>
          <span>pid {h.pid}</span>
          <span>conns {h.connections}</span>
          <span>{h.events?.per_s ?? 0} ev/s</span>
          <span data-testid="seq">seq {h.events?.seq}</span>
          <span>rss {h.memory?.rss_mb}MB</span>
        </>
      )}
      <span className={up ? 'live' : 'warn'}>{up ? 'live' : 'reconnecting…'}</span>
      <span>{state.received} seen</span>
    </div>
  );
}

export function PluginsPanel({ snap }: { snap: Snapshot }) {
  const rows = pluginViews(snap.health);
  const ok = rows.filter((r) => r.status === 'ok').length;
  return (
    <Panel id="plugins" title="Plugins" right={`${ok}/${rows.length} ok`}>
      <table>
        <tbody>
          {rows.map((p) => (
            <tr key={p.name} data-plugin={p.name}>
              <td>{p.name}</td>
              <td className={`st ${p.status}`}>{p.status}</td>
              <td className="muted">{p.reason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Panel>
  );
}

export function AgentsPanel({ snap, state }: { snap: Snapshot; state: StreamState }) {
  const rows = agentViews(snap.plugins.agent, state);
  const active = rows.filter((a) => a.status !== 'terminated').length;
  return (
    <Panel id="agents" title="Agents" right={`${active} active`}>
      <Absent probe={snap.plugins.agent} name="agent" />
      <table>
        <tbody>
          {rows.slice(0, 50).map((a) => (
            <tr key={a.id} data-agent={a.id}>
              <td>{a.id}</td>
              <td className={`st ${a.status ?? ''}`}>{a.status ?? '?'}</td>
              <td>{a.turn !== undefined ? `t${a.turn}` : ''}</td>
              <td>{a.tool ? `⚙${a.tool}` : ''}</td>
              <td>{a.spendUsd !== undefined ? usd(a.spendUsd) : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Panel>
  );
}

export function CompletionsPanel({ snap, state }: { snap: Snapshot; state: StreamState }) {
  const v = completionsView(snap.plugins.completion, state);
  const t = state.completionTotals;
  return (
    <Panel id="completions" title="Completions" right={`${t.completed} done`}>
      <Absent probe={snap.plugins.completion} name="completion" />
      <p>
        run {v.inFlight} · q {v.queued} · {compact(state.tokensPerSecond)} tok/s
        {t.failed ? ` · ${t.failed} failed` : ''}
      </p>
      <table>
        <tbody>
          {v.rows.slice(0, 12).map((r) => (
            <tr key={r.requestId} data-request={r.requestId}>
              <td>{r.agentId ?? r.sessionId ?? ''}</td>
              <td title={r.requestId}>{shortId(r.requestId)}</td>
              <td className={`st ${r.status}`}>{r.status}</td>
              <td>{r.tokens ? `${r.tokens} tok` : ''}</td>
              <td>{r.costUsd !== undefined ? usd(r.costUsd) : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Panel>
  );
}

export function BudgetPanel({ snap, state }: { snap: Snapshot; state: StreamState }) {
  const rows = budgetViews(snap.plugins.budget);
  const alert = state.alerts[state.alerts.length - 1];
  return (
    <Panel id="budget" title="Budget" right={alert ? `${alert.event.slice(7)} ${clock(alert.ts)}` : undefined}>
      <Absent probe={snap.plugins.budget} name="budget" />
      {rows.slice(0, 12).map((b) => {
        const pct = b.percent ?? b.percentTokens ?? null;
        const band = pct === null ? '' : pct >= 90 ? 'red' : pct >= 75 ? 'yellow' : pct >= 50 ? 'cyan' : 'green';
        return (
          <div className="gauge" key={b.key} data-scope={b.label}>
            <span className="label">{b.label}</span>
            <span className="bar">
              <span className={`fill ${band}`} style={{ width: `${Math.min(100, pct ?? 0)}%` }} />
            </span>
            <span>{pct === null ? usd(b.spentUsd) : `${Math.round(pct)}%`}</span>
            <span className="muted">{b.period}</span>
          </div>
        );
      })}
    </Panel>
  );
}

export function SandboxPanel({ snap, state }: { snap: Snapshot; state: StreamState }) {
  const v = sandboxView(snap.plugins.sandbox, state);
  const engine = v.engine ? (v.engine.reachable ? 'docker ok' : 'docker down') : '';
  return (
    <Panel id="sandbox" title="Sandbox" right={engine}>
      <Absent probe={snap.plugins.sandbox} name="sandbox" />
      <p>
        run {v.running ?? 0} · pool {v.pool?.ready ?? 0}/{v.pool?.size ?? 0}
        {v.sessions ? ` · ${v.sessions} sessions` : ''}
      </p>
      <table>
        <tbody>
          {v.rows.slice(0, 10).map((r) => (
            <tr key={r.execId}>
              <td title={r.execId}>{shortId(r.execId)}</td>
              <td>{r.language ?? ''}</td>
              <td>{r.running ? 'running' : r.timedOut ? 'timeout' : `exit ${r.exitCode ?? '?'}`}</td>
              <td>{r.durationMs !== undefined ? `${r.durationMs} ms` : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Panel>
  );
}

export function KgCounts({ snap }: { snap: Snapshot }) {
  const v = kgView(snap.plugins.kg);
  return (
    <div className="kg-counts" data-testid="kg-counts">
      <span>
        nodes {v.nodes ?? '–'} · edges {v.edges ?? '–'}
      </span>
      {v.rows.slice(0, 8).map((r) => (
        <span key={r.key} className="muted">
          {r.kind === 'label' ? '•' : '→'} {r.name} {r.count}
        </span>
      ))}
    </div>
  );
}

export function EventLog({
  state,
  filter,
  setFilter,
  onPause,
}: {
  state: StreamState;
  filter: Filter;
  setFilter: (f: Filter) => void;
  onPause: () => void;
}) {
  const [text, setText] = useState(filter.text);
  const [error, setError] = useState<string | null>(null);
  const log = visibleLog(state).slice(-200).reverse();
  const title = `${state.perSecond}/s · ${state.received} seen${state.sampling ? ` · sampled, ${state.skipped} skipped` : ''}${state.dropped ? ` · ${state.dropped} dropped` : ''}`;
  return (
    <Panel id="events" title={`Events${filter.text ? ` [${filter.text}]` : ''}`} right={title} wide>
      <form
        className="filter"
        onSubmit={(e) => {
          e.preventDefault();
          try {
            setFilter(parseFilter(text));
            setError(null);
          } catch (err) {
            setError((err as Error).message);
          }
        }}
      >
        <input
          aria-label="filter"
          placeholder="filter: agent:* completion:error !budget:spent"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <button type="submit">apply</button>
        <button type="button" onClick={onPause}>
          {state.frozen ? `resume (+${state.missed})` : 'pause'}
        </button>
        {error && <span className="warn">{error}</span>}
      </form>
      <ol className="log" data-testid="event-log">
        {log.map((e) => (
          <li key={`${e.epoch}-${e.seq}-${e.kind}-${e.event}`} className={e.kind} data-event={e.event}>
            <span className="ts">{clock(e.ts)}</span>{' '}
            <span className="ev">{e.kind === 'dropped' ? `⚠ ${String(e.data.count)} events dropped` : e.event}</span>{' '}
            <span className="data">{e.kind === 'event' ? summarize(e.data, 300) : ''}</span>
          </li>
        ))}
      </ol>
    </Panel>
  );
}
