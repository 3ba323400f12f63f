/**
 * The monitor: header, two rows of panels, the event log, and a help line, laid out for the
 * terminal's size. Keys: `/` filter, `p` pause, tab/arrows move between panels, ↑↓ select,
 * enter details, esc close, `q` quit.
 */
import React, { useCallback, useEffect, useMemo, useReducer, useRef } from 'react';
import { Box, useApp, useInput, type Key } from 'ink';
import type { EventClient } from '../../client/index.js';
import type { EventData, EventMap } from '../../client/event-types.js';
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
import { WorkflowsPanel } from './components/workflows-panel.js';
import { useWorkflows } from './hooks/use-workflows.js';
import { runRows } from './state/workflows.js';

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

interface Ui {
  mode: Mode;
  draft: string;
  filterError: string | null;
  focus: PanelId;
  selection: Record<PanelId, number>;
  /** Selected log entry counted from the newest; null follows the tail. */
  logCursor: number | null;
  details: DetailState | null;
  /** First line shown in the details view. */
  detailsOffset: number;
}

const INITIAL_UI: Ui = {
  mode: 'normal',
  draft: '',
  filterError: null,
  focus: 'log',
  selection: { health: 0, agents: 0, completions: 0, budget: 0, sandbox: 0, kg: 0, workflows: 0, log: 0 },
  logCursor: null,
  details: null,
  detailsOffset: 0,
};

export function App({ client, fastMs, slowMs, pollMs, capacity, initialFilter }: AppProps): React.JSX.Element {
  const { exit } = useApp();
  const size = useTerminalSize();
  const layout = computeLayout(size.columns, size.rows);
  const clock = useMemo(() => new FrameClock({ fastMs, slowMs }), [fastMs, slowMs]);
  useEffect(() => () => clock.stop(), [clock]);
  const { state, connection, dispatch, setFilter } = useEventStream(client, { clock, capacity, initialFilter });
  const snap = useDaemonPoll(client, clock, pollMs);
  // Keyboard state lives in a ref that each key updates at once, so keys arriving in one burst
  // (a paste, tmux send-keys, a fast typist) each see the previous one's effect; a render follows.
  const ui = useRef<Ui>(INITIAL_UI);
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const update = (patch: Partial<Ui>): void => {
    ui.current = { ...ui.current, ...patch };
    rerender();
  };
  const { mode, draft, filterError, focus, logCursor, details } = ui.current;
  const paused = useRef(false);
  paused.current = state.frozen !== null;
  const setPaused = (on: boolean): void => {
    if (on === paused.current) return;
    paused.current = on;
    dispatch({ type: on ? 'pause' : 'resume' });
  };

  const plugins = useMemo(() => pluginViews(snap.health), [snap.health]);
  const agents = useMemo(() => agentViews(snap.plugins.agent, state), [snap.plugins.agent, state.agents]);
  const completions = useMemo(
    () => completionsView(snap.plugins.completion, state),
    [snap.plugins.completion, state.completions],
  );
  const budget = useMemo(() => budgetViews(snap.plugins.budget), [snap.plugins.budget]);
  const sandbox = useMemo(() => sandboxView(snap.plugins.sandbox, state), [snap.plugins.sandbox, state.execs]);
  const kg = useMemo(() => kgView(snap.plugins.kg), [snap.plugins.kg]);
  const runsRef = useRef<ReturnType<typeof runRows>>([]);
  const pickedRun =
    ui.current.focus === 'workflows' ? (runsRef.current[ui.current.selection.workflows]?.runId ?? null) : null;
  const flows = useWorkflows(client, clock, pickedRun, pollMs);
  const runs = useMemo(() => runRows(flows.runs.data), [flows.runs]);
  runsRef.current = runs;
  const log = visibleLog(state);

  const order = focusable(layout);
  const panelsHeight = layout.top + layout.middle + layout.log;
  const maxDetailOffset = details
    ? Math.max(0, (JSON.stringify(details.body, null, 2) ?? '').split('\n').length - (panelsHeight - 2))
    : 0;
  const currentOf = (f: PanelId): PanelId => (order.includes(f) ? f : 'log');
  const current = currentOf(focus);
  const counts: Record<PanelId, number> = {
    health: plugins.length,
    agents: agents.length,
    completions: completions.rows.length,
    budget: budget.length,
    sandbox: sandbox.rows.length,
    kg: kg.rows.length,
    workflows: runs.length,
    log: log.length,
  };
  const sel = (p: PanelId): number => Math.max(0, Math.min(ui.current.selection[p], counts[p] - 1));

  /** Open the details of the focused panel's selected item; false when there is nothing to show. */
  const openDetails = (): boolean => {
    const panel = currentOf(ui.current.focus);
    const i = sel(panel);
    let shown = false;
    const show = (title: string, body: unknown, loading = false): void => {
      shown = true;
      update({ details: { title, body, loading }, mode: 'details', detailsOffset: 0 });
    };
    const settle = (title: string, body: unknown): void => {
      const d = ui.current.details;
      if (d && d.title === title) update({ details: { title, body, loading: false } });
    };
    const fetchInto = <E extends keyof EventMap>(
      title: string,
      event: E,
      data: EventData<E>,
      fallback: unknown,
    ): void => {
      show(title, fallback, true);
      client
        .request(event, data, { timeoutMs: 5000 })
        .then((r) => settle(title, r))
        .catch((e: Error) => settle(title, { local: fallback, [event]: e.message }));
    };
    switch (panel) {
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
      case 'workflows': {
        const r = runs[i];
        if (r) fetchInto(`Run ${r.runId}`, 'workflow:status', { run_id: r.runId }, r);
        break;
      }
      case 'log': {
        const idx = log.length - 1 - (ui.current.logCursor ?? 0);
        const e = log[idx];
        if (e)
          show(`${e.event} #${e.seq}`, {
            event: e.event,
            seq: e.seq,
            timestamp: e.ts,
            agent_id: e.agentId,
            data: e.data,
          });
        break;
      }
    }
    return shown;
  };

  const move = (delta: number): void => {
    const panel = currentOf(ui.current.focus);
    if (panel === 'log') {
      // Browsing the log pauses it, or the entries would slide under the cursor.
      setPaused(true);
      const c = ui.current.logCursor;
      update({ logCursor: c === null ? 0 : Math.max(0, Math.min(c - delta, log.length - 1)) });
      return;
    }
    update({
      selection: { ...ui.current.selection, [panel]: Math.max(0, Math.min(sel(panel) + delta, counts[panel] - 1)) },
    });
  };

  const cycle = (delta: number): void => {
    const i = order.indexOf(currentOf(ui.current.focus));
    update({ focus: order[(i + delta + order.length) % order.length] });
  };

  const applyFilter = (): void => {
    try {
      const f = parseFilter(ui.current.draft);
      setFilter(f);
      update({ mode: 'normal', filterError: null, logCursor: null });
    } catch (e) {
      update({ filterError: (e as Error).message });
    }
  };

  const onKey = (input: string, key: Key): void => {
    const u = ui.current;
    // Several plain keys in one read (tmux send-keys, a held key, a paste) arrive as one string:
    // outside the filter line each one is a command of its own.
    if (u.mode !== 'filter' && input.length > 1 && !input.startsWith('/') && !key.ctrl && !key.meta) {
      for (const ch of input) onKey(ch, { ...key, tab: ch === '\t', return: ch === '\r', shift: false });
      return;
    }
    if (u.mode === 'filter') {
      if (key.escape) update({ mode: 'normal', filterError: null });
      else if (key.return) applyFilter();
      else if (key.backspace || key.delete) update({ draft: u.draft.slice(0, -1), filterError: null });
      else if (key.ctrl && input === 'u') update({ draft: '', filterError: null });
      else if (input && !key.ctrl && !key.meta) {
        // A paste may carry the enter with it.
        const enter = /[\r\n]$/.test(input);
        update({ draft: u.draft + input.replace(/[\r\n]/g, ''), filterError: null });
        if (enter) applyFilter();
      }
      return;
    }
    if (input === 'q') {
      exit();
      return;
    }
    if (u.mode === 'details') {
      const page = Math.max(1, panelsHeight - 3);
      const scroll = (d: number): void =>
        update({ detailsOffset: Math.max(0, Math.min(u.detailsOffset + d, maxDetailOffset)) });
      if (key.escape || key.return) update({ details: null, mode: 'normal' });
      else if (key.upArrow) scroll(-1);
      else if (key.downArrow) scroll(1);
      else if (key.pageUp) scroll(-page);
      else if (key.pageDown || input === ' ') scroll(page);
      return;
    }
    if (input.startsWith('/')) {
      update({ mode: 'filter', draft: input.length > 1 ? '' : state.filter.text, filterError: null });
      if (input.length > 1) onKey(input.slice(1), key);
    } else if (input === 'p') {
      const on = !paused.current;
      setPaused(on);
      if (!on) update({ logCursor: null });
    } else if (key.tab) cycle(key.shift ? -1 : 1);
    else if (key.rightArrow) cycle(1);
    else if (key.leftArrow) cycle(-1);
    else if (key.upArrow) move(-1);
    else if (key.downArrow) move(1);
    else if (key.return) openDetails();
    else if (key.escape && currentOf(u.focus) === 'log' && u.logCursor !== null) {
      update({ logCursor: null });
      setPaused(false);
    }
  };
  // One stable listener that calls the latest handler: keys typed right after a render see its state.
  const keyRef = useRef(onKey);
  keyRef.current = onKey;
  useInput(useCallback((input: string, key: Key) => keyRef.current(input, key), []));

  const [w1, w2, w3] = layout.widths;
  return (
    <Box flexDirection="column" width={layout.columns} height={layout.height}>
      <Header health={snap.health} connection={connection} width={layout.columns} />
      {mode === 'details' && details ? (
        <Details
          title={details.title}
          body={details.body}
          loading={details.loading}
          width={layout.columns}
          height={panelsHeight}
          offset={ui.current.detailsOffset}
        />
      ) : (
        <>
          {layout.top > 0 && (
            <Box flexDirection="row" height={layout.top}>
              <HealthPanel
                plugins={plugins}
                width={w1}
                height={layout.top}
                focused={current === 'health'}
                selected={sel('health')}
                waiting={!snap.health.data}
              />
              <AgentsPanel
                agents={agents}
                probe={snap.plugins.agent}
                width={w2}
                height={layout.top}
                focused={current === 'agents'}
                selected={sel('agents')}
              />
              <CompletionsPanel
                view={completions}
                stream={state}
                probe={snap.plugins.completion}
                width={w3}
                height={layout.top}
                focused={current === 'completions'}
                selected={sel('completions')}
              />
            </Box>
          )}
          {layout.middle > 0 && (
            <Box flexDirection="row" height={layout.middle}>
              <BudgetPanel
                scopes={budget}
                alerts={state.alerts}
                probe={snap.plugins.budget}
                width={w1}
                height={layout.middle}
                focused={current === 'budget'}
                selected={sel('budget')}
              />
              <SandboxPanel
                view={sandbox}
                probe={snap.plugins.sandbox}
                width={w2}
                height={layout.middle}
                focused={current === 'sandbox'}
                selected={sel('sandbox')}
              />
              <KgPanel
                view={kg}
                probe={snap.plugins.kg}
                width={w3}
                height={layout.middle}
                focused={current === 'kg'}
                selected={sel('kg')}
              />
            </Box>
          )}
          {layout.flow > 0 && (
            <WorkflowsPanel
              runs={runs}
              snap={flows}
              width={layout.columns}
              height={layout.flow}
              focused={current === 'workflows'}
              selected={sel('workflows')}
            />
          )}
          <EventLog
            stream={state}
            entries={log}
            width={layout.columns}
            height={layout.log}
            focused={current === 'log'}
            selected={current === 'log' ? logCursor : null}
          />
        </>
      )}
      <HelpLine mode={mode} width={layout.columns} paused={paused.current} draft={draft} error={filterError} />
    </Box>
  );
}
