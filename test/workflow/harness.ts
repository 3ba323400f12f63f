/**
 * The engine without a daemon: a real SQLite journal in a temp directory, the plugin's migrations,
 * and a performer the test scripts per event. A "restart" is a new engine on the same database, as
 * after a kill -9 (the old engine is abandoned, never stopped).
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { migrate, openDatabase } from '../../daemon/persistence.js';
import { runLazy } from '../../daemon/group-commit.js';
import { Engine } from '../../plugins/workflow/engine.js';
import {
  DEFAULT_ENGINE_CONFIG,
  type EngineConfig,
  type EngineDeps,
  type ReplanRequest,
} from '../../plugins/workflow/deps.js';
import { resolveInputs, validateDefinition } from '../../plugins/workflow/validate.js';
import { MIGRATIONS, WorkflowStore } from '../../plugins/workflow/store.js';
import type { TaskSpec } from '../../plugins/workflow/task.js';
import type { Definition, DefinitionInput } from '../../plugins/workflow/definition.js';
import { tempHome } from '../helpers/daemon-process.js';

export interface Emitted {
  event: string;
  data: Record<string, unknown>;
  context: Record<string, unknown>;
}

export type Performer = (t: TaskSpec, signal: AbortSignal) => Promise<unknown>;

export interface Harness {
  db: Database.Database;
  dir: string;
  engine: Engine;
  events: Emitted[];
  performed: TaskSpec[];
  abandoned: TaskSpec[];
  /** Replace the performer (per test). */
  perform: { fn: Performer };
  replan: { fn: (r: ReplanRequest) => Promise<Definition> };
  stopping: { value: boolean };
  start(
    def: DefinitionInput,
    inputs?: Record<string, unknown>,
    opts?: { run_id?: string; budget_usd?: number },
  ): Promise<string>;
  /** A new engine on the same journal: what a daemon restart after kill -9 sees. */
  restart(): Harness;
  close(): void;
}

export function harness(
  config: Partial<EngineConfig> = {},
  dir = tempHome('agentd-wf-unit-'),
  shared?: Pick<Harness, 'events' | 'performed' | 'abandoned' | 'perform' | 'replan'>,
): Harness {
  const db = openDatabase(path.join(dir, 'db'));
  migrate(db, 'workflow', MIGRATIONS);
  const store = new WorkflowStore(db);
  const events = shared?.events ?? [];
  const performed = shared?.performed ?? [];
  const abandoned = shared?.abandoned ?? [];
  const perform = shared?.perform ?? { fn: async (t: TaskSpec) => ({ echo: t.data ?? t.agent ?? null }) };
  const replan = shared?.replan ?? {
    fn: async (): Promise<Definition> => {
      throw new Error('no replan scripted');
    },
  };
  const stopping = { value: false };
  const deps: EngineDeps = {
    store,
    journal: (op) => void runLazy(db, op),
    durable: async (op) => void db.transaction(op)(),
    perform: (t, signal) => {
      performed.push(t);
      return perform.fn(t, signal);
    },
    abandon: (t) => void abandoned.push(t),
    emit: (event, data, context) => void events.push({ event, data, context: { ...context } }),
    isRunBudget: (runId, err) => err.details?.scope === 'workflow' && err.details?.id === runId,
    replan: (r) => replan.fn(r),
    cost: async () => null,
    isStopping: () => stopping.value,
    now: () => Date.now(),
    log: pino({ level: 'silent' }),
    config: { ...DEFAULT_ENGINE_CONFIG, ...config },
  };
  const engine = new Engine(deps);
  const h: Harness = {
    db,
    dir,
    engine,
    events,
    performed,
    abandoned,
    perform,
    replan,
    stopping,
    async start(def, inputs = {}, opts = {}) {
      const definition = validateDefinition(def);
      const r = await engine.start({
        definition,
        inputs: resolveInputs(definition, inputs),
        run_id: opts.run_id,
        budget_usd: opts.budget_usd ?? null,
        source: 'inline',
        context: { id: 'c-root', parent_id: null, root_id: 'c-root', depth: 1 },
      });
      return r.run_id;
    },
    restart() {
      stopping.value = true; // the old engine acts no more, as if its process had died
      const next = harness(config, dir, { events, performed, abandoned, perform, replan });
      return next;
    },
    close() {
      stopping.value = true;
      db.close();
    },
  };
  return h;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Events of one name, data only. */
export const named = (h: Pick<Harness, 'events'>, event: string): Array<Record<string, unknown>> =>
  h.events.filter((e) => e.event === event).map((e) => e.data);
