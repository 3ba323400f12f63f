/**
 * The monitor: header, two rows of panels, the event log, and a help line, laid out for the
 * terminal's size. Keys: `/` filter, `p` pause, tab/arrows move between panels, ↑↓ select,
 * enter details, esc close, `q` quit.
 */
import React, { useEffect, useMemo, useState } from 'react';
import { Box, useApp, useInput } from 'ink';
import type { EventClient } from '../../client/index.js';
import { useEventStream } from './hooks/use-event-stream.js';
import { useDaemonPoll } from './hooks/use-daemon-poll.js';
import { useTerminalSize } from './hooks/use-terminal-size.js';
import { FrameClock } from './frame-clock.js';
import { computeLayout, focusable, type PanelId } from './state/layout.js';
import { parseFilter, type Filter } from './state/patterns.js';
import { visibleLog } from './state/stream.js';
import { agentViews, budgetViews, completionsView, kgView, pluginViews, sandboxView } from './state/views.js';
import { Header } from './components/header.js';
import { HealthPanel } from './components/health-panel.js';
import { AgentsPanel } from './components/agents-panel.js';
import { CompletionsPanel } from './components/completions-panel.js';
import { BudgetPanel } from './components/budget-panel.js';
import { SandboxPanel } from './components/sandbox-panel.js';
import { KgPanel } from './components/kg-panel.js';
import { EventLog } from './components/event-log.js';
import { HelpLine, type Mode } from './components/help-line.js';
import { Details } from './components/details.js';

export interface AppProps {
  client: EventClient;
  /** Render tick while quiet and under load (default 250 / 1000 ms). */
  fastMs?: number;
  slowMs?: number;
  /** Milliseconds between health polls (default 1000). */
  pollMs?: number;
  /** Log entries kept (default 500). */
  capacity?: number;
  /** The log filter to start with. */
  initialFilter?: Filter;
}

interface DetailState {
  title: string;
  body: unknown;
  loading: boolean;
}

export function App({ client, fastMs, slowMs, pollMs, capacity, initialFilter }: AppProps): React.JSX.Element {
  const { exit } = useApp();
  const size = useTerminalSize();
  const layout = computeLayout(size.columns, size.rows);
  const clock = useMemo(() => new FrameClock({ fastMs, slowMs }), [fastMs, slowMs]);
  useEffect(() => () => clock.stop(), [clock]);
  const { state, connection, dispatch, setFilter } = useEventStream(client, { clock, capacity, initialFilter });
  const snap = useDaemonPoll(client, clock, pollMs);
  const [mode, setMode] = useState<Mode>('normal');
  const [draft, setDraft] = useState('');
  const [filterError, setFilterError] = useState<string | null>(null);
  const [focus, setFocus] = useState<PanelId>('log');
  const [selection, setSelection] = useState<Record<PanelId, number>>({ health: 0, agents: 0, completions: 0, budget: 0, sandbox: 0, kg: 0, log: 0 });
  const [logCursor, setLogCursor] = useState<number | null>(null);
  const [details, setDetails] = useState<DetailState | null>(null);

  const plugins = useMemo(() => pluginViews(snap.health), [snap.health]);
  const agents = useMemo(() => agentViews(snap.plugins.agent, state), [snap.plugins.agent, state.agents]);
  const completions = useMemo(() => completionsView(snap.plugins.completion, state), [snap.plugins.completion, state.completions]);
  const budget = useMemo(() => budgetViews(snap.plugins.budget), [snap.plugins.budget]);
  const sandbox = useMemo(() => sandboxView(snap.plugins.sandbox, state), [snap.plugins.sandbox, state.execs]);
  const kg = useMemo(() => kgView(snap.plugins.kg), [snap.plugins.kg]);
  const log = visibleLog(state);

  const order = focusable(layout);
  const current: PanelId = order.includes(focus) ? focus : 'log';
  const counts: Record<PanelId, number> = {
    health: plugins.length,
    agents: agents.length,
    completions: completions.rows.length,
    budget: budget.length,
    sandbox: sandbox.rows.length,
    kg: kg.rows.length,
    log: log.length,
  };
  const sel = (p: PanelId): number => Math.max(0, Math.min(selection[p], counts[p] - 1));

  /** Open the details of the focused panel's selected item; false when there is nothing to show. */
  const openDetails = (): boolean => {
    const i = sel(current);
    let shown = false;
    const show = (title: string, body: unknown, loading = false): void => {
      shown = true;
      setDetails({ title, body, loading });
    };
    const fetchInto = (title: string, event: string, data: Record<string, unknown>, fallback: unknown): void => {
      show(title, fallback, true);
      client
        .request(event, data, { timeoutMs: 5000 })
        .then((r) => setDetails((d) => (d && d.title === title ? { title, body: r, loading: false } : d)))
        .catch((e: Error) => setDetails((d) => (d && d.title === title ? { title, body: { local: fallback, [event]: e.message }, loading: false } : d)));
    };
    switch (current) {
      case 'health': {
        const p = plugins[i];
        if (p) show(`Plugin ${p.name}`, p);
        break;
      }
      case 'agents': {
        const a = agents[i];
        if (a) fetchInto(`Agent ${a.id}`, 'agent:info', { agent_id: a.id }, a);
        break;
      }
      case 'completions': {
        const r = completions.rows[i];
        if (r) fetchInto(`Request ${r.requestId}`, 'completion:status', { request_id: r.requestId }, r);
        break;
      }
      case 'budget': {
        const b = budget[i];
        if (b) show(`Budget ${b.label} (${b.period})`, b.raw);
        break;
      }
      case 'sandbox': {
        const x = sandbox.rows[i];
        show(x ? `Exec ${x.execId}` : 'Sandbox', x ?? snap.plugins.sandbox.data ?? null);
        break;
      }
      case 'kg':
        show('Knowledge graph', snap.plugins.kg.data ?? null);
        break;
      case 'log': {
        const idx = log.length - 1 - (logCursor ?? 0);
        const e = log[idx];
        if (e) show(`${e.event} #${e.seq}`, { event: e.event, seq: e.seq, timestamp: e.ts, agent_id: e.agentId, data: e.data });
        break;
      }
    }
    return shown;
  };

  const move = (delta: number): void => {
    if (current === 'log') {
      // Browsing the log pauses it, or the entries would slide under the cursor.
      if (!state.frozen) dispatch({ type: 'pause' });
      setLogCursor((c) => (c === null ? 0 : Math.max(0, Math.min(c - delta, log.length - 1))));
      return;
    }
    setSelection((s) => ({ ...s, [current]: Math.max(0, Math.min(sel(current) + delta, counts[current] - 1)) }));
  };

  const cycle = (delta: number): void => {
    const i = order.indexOf(current);
    setFocus(order[(i + delta + order.length) % order.length]);
  };

  useInput((input, key) => {
    if (mode === 'filter') {
      if (key.escape) {
        setMode('normal');
        setFilterError(null);
      } else if (key.return) {
        try {
          const f = parseFilter(draft);
          setFilter(f);
          setLogCursor(null);
          setMode('normal');
          setFilterError(null);
        } catch (e) {
          setFilterError((e as Error).message);
        }
      } else if (key.backspace || key.delete) {
        setDraft((d) => d.slice(0, -1));
        setFilterError(null);
      } else if (key.ctrl && input === 'u') {
        setDraft('');
      } else if (input && !key.ctrl && !key.meta) {
        setDraft((d) => d + input);
        setFilterError(null);
      }
      return;
    }
    if (input === 'q') {
      exit();
      return;
    }
    if (mode === 'details') {
      if (key.escape || key.return) {
        setDetails(null);
        setMode('normal');
      }
      return;
    }
    if (input === '/') {
      setDraft(state.filter.text);
      setMode('filter');
    } else if (input === 'p') {
      if (state.frozen) {
        dispatch({ type: 'resume' });
        setLogCursor(null);
      } else dispatch({ type: 'pause' });
    } else if (key.tab) cycle(key.shift ? -1 : 1);
    else if (key.rightArrow) cycle(1);
    else if (key.leftArrow) cycle(-1);
    else if (key.upArrow) move(-1);
    else if (key.downArrow) move(1);
    else if (key.return) {
      if (openDetails()) setMode('details');
    } else if (key.escape && current === 'log' && logCursor !== null) {
      setLogCursor(null);
      dispatch({ type: 'resume' });
    }
  });

  const [w1, w2, w3] = layout.widths;
  const panelsHeight = layout.top + layout.middle + layout.log;
  return (
    <Box flexDirection="column" width={layout.columns} height={layout.height}>
      <Header health={snap.health} connection={connection} width={layout.columns} />
      {mode === 'details' && details ? (
        <Details title={details.title} body={details.body} loading={details.loading} width={layout.columns} height={panelsHeight} />
      ) : (
        <>
          {layout.top > 0 && (
            <Box flexDirection="row" height={layout.top}>
              <HealthPanel plugins={plugins} width={w1} height={layout.top} focused={current === 'health'} selected={sel('health')} waiting={!snap.health.data} />
              <AgentsPanel agents={agents} probe={snap.plugins.agent} width={w2} height={layout.top} focused={current === 'agents'} selected={sel('agents')} />
              <CompletionsPanel view={completions} stream={state} probe={snap.plugins.completion} width={w3} height={layout.top} focused={current === 'completions'} selected={sel('completions')} />
            </Box>
          )}
          {layout.middle > 0 && (
            <Box flexDirection="row" height={layout.middle}>
              <BudgetPanel scopes={budget} alerts={state.alerts} probe={snap.plugins.budget} width={w1} height={layout.middle} focused={current === 'budget'} selected={sel('budget')} />
              <SandboxPanel view={sandbox} probe={snap.plugins.sandbox} width={w2} height={layout.middle} focused={current === 'sandbox'} selected={sel('sandbox')} />
              <KgPanel view={kg} probe={snap.plugins.kg} width={w3} height={layout.middle} focused={current === 'kg'} selected={sel('kg')} />
            </Box>
          )}
          <EventLog stream={state} entries={log} width={layout.columns} height={layout.log} focused={current === 'log'} selected={current === 'log' ? logCursor : null} />
        </>
      )}
      <HelpLine mode={mode} width={layout.columns} paused={state.frozen !== null} draft={draft} error={filterError} />
    </Box>
  );
}
