/**
 * The web dashboard served by the gateway at `/`. The token comes from the URL fragment
 * (`#token=…`, which browsers never send to a server; it is removed from the address bar at once)
 * or from the form, and is kept for the tab's session only.
 */
import { StrictMode, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { NO_FILTER, type Filter } from '../monitor/state/patterns.js';
import { Api } from './api.js';
import { KgExplorer } from './kg-graph.js';
import {
  AgentsPanel,
  BudgetPanel,
  CompletionsPanel,
  EventLog,
  HeaderBar,
  KgCounts,
  Panel,
  PluginsPanel,
  SandboxPanel,
} from './panels.js';
import { useFeeds } from './use-feeds.js';
import { usePolls } from './use-polls.js';
import { Workflows } from './workflow-dag.js';
import './style.css';

const KEY = 'agentd.gateway.token';

function tokenFromFragment(): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return null;
  const token = decodeURIComponent(m[1]);
  history.replaceState(null, '', location.pathname + location.search);
  sessionStorage.setItem(KEY, token);
  return token;
}

function TokenForm({ onToken, refused }: { onToken: (t: string) => void; refused: boolean }) {
  const [t, setT] = useState('');
  return (
    <form
      className="token-form"
      data-testid="token-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (t.trim()) onToken(t.trim());
      }}
    >
      <h1>agentd</h1>
      <p>
        The gateway's bearer token: <code>AGENTD_GATEWAY_TOKEN</code>, or the file <code>var/run/gateway.token</code>.
      </p>
      {refused && <p className="warn">That token was refused.</p>}
      <input type="password" aria-label="token" autoComplete="off" value={t} onChange={(e) => setT(e.target.value)} />
      <button type="submit">open</button>
    </form>
  );
}

function Dashboard({ api, onRefused }: { api: Api; onRefused: () => void }) {
  const [filter, setFilter] = useState<Filter>(NO_FILTER);
  const { state, dispatch, up, changes } = useFeeds(api, filter);
  const snap = usePolls(api, changes.kg);
  if (snap.unauthorized) queueMicrotask(onRefused);
  const live = up.lifecycle === true && up.census === true;
  const workflowPresent = snap.plugins.workflow.data !== undefined || snap.plugins.workflow.error !== undefined;
  return (
    <div className="dashboard">
      <HeaderBar health={snap.health} state={state} up={live} />
      <main className="grid">
        <PluginsPanel snap={snap} />
        <AgentsPanel snap={snap} state={state} />
        <CompletionsPanel snap={snap} state={state} />
        <BudgetPanel snap={snap} state={state} />
        <SandboxPanel snap={snap} state={state} />
        <Panel id="kg" title="Knowledge graph" wide>
          <KgCounts snap={snap} />
          <KgExplorer api={api} version={changes.kg} />
        </Panel>
        {workflowPresent && (
          <Panel id="workflows" title="Workflows" wide>
            <Workflows api={api} probe={snap.plugins.workflow} version={changes.workflow} changedRuns={changes.runs} />
          </Panel>
        )}
        <EventLog
          state={state}
          filter={filter}
          setFilter={setFilter}
          onPause={() => dispatch({ type: state.frozen ? 'resume' : 'pause' })}
        />
      </main>
    </div>
  );
}

function App() {
  const [token, setToken] = useState<string | null>(() => tokenFromFragment() ?? sessionStorage.getItem(KEY));
  const [refused, setRefused] = useState(false);
  const api = useMemo(() => (token ? new Api(location.origin, token) : null), [token]);
  if (!api) {
    return (
      <TokenForm
        refused={refused}
        onToken={(t) => {
          sessionStorage.setItem(KEY, t);
          setRefused(false);
          setToken(t);
        }}
      />
    );
  }
  return (
    <Dashboard
      key={token}
      api={api}
      onRefused={() => {
        sessionStorage.removeItem(KEY);
        setRefused(true);
        setToken(null);
      }}
    />
  );
}

window.addEventListener('hashchange', () => {
  if (tokenFromFragment()) location.reload();
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
