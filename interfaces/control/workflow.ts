/**
 * daemon-control's workflow commands: `run <workflow>` with live progress (a line per step with its
 * state and elapsed time, a progress bar for a foreach), `runs`, and `run status|cancel|signal`.
 * Exit codes as for every command: 0 the run succeeded (or the request did), 1 it did not, 2 usage.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DaemonError } from '../../client/errors.js';
import type { EventClient } from '../../client/event-client.js';
import type { EventFrame } from '../../client/protocol.js';
import { parseCommand, UsageError } from './args.js';

export const WORKFLOW_USAGE = `  run <workflow> [--input k=v ...] [--budget USD] [--detach] [--json]
                                run a workflow with live progress (k=@file: its text; k=@dir/: its files as [{path, content}])
  run status|cancel <run_id>    a run's steps and outputs / stop it, keeping its outputs
  run signal <run_id> <step> [json]  release a wait step with that data
  runs [--status S] [--workflow W] [--limit N] [--json]  recent runs`;

type Out = (s: string) => void;

export interface WorkflowCli {
  connect(): Promise<EventClient | null>;
  out: Out;
  err: Out;
  /** Whether stdout is a terminal (progress bars redraw in place). */
  tty: boolean;
}

const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;

/** `--input k=v` values: text, `@file` its content, `@dir` its files as [{path, content}]. */
export function inputValue(raw: string, cwd = process.cwd()): unknown {
  if (!raw.startsWith('@')) return raw;
  const p = path.resolve(cwd, raw.slice(1));
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new UsageError(`--input ${raw}: no such file or directory`);
  }
  if (!st.isDirectory()) return fs.readFileSync(p, 'utf8');
  const files: Array<{ path: string; content: string }> = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.')) continue;
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.isFile())
        files.push({ path: path.relative(p, f).split(path.sep).join('/'), content: fs.readFileSync(f, 'utf8') });
    }
  };
  walk(p);
  return files;
}

/** Split repeated `--input k=v` (or `-i`) out of the arguments; parseArgs keeps only the last of a repeated option. */
function takeInputs(args: string[]): { inputs: Record<string, unknown>; rest: string[] } {
  const inputs: Record<string, unknown> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let kv: string | undefined;
    if (a === '--input' || a === '-i') {
      kv = args[++i];
      if (kv === undefined) throw new UsageError(`option ${a} needs a value k=v`);
    } else if (a.startsWith('--input=')) kv = a.slice('--input='.length);
    else {
      rest.push(a);
      continue;
    }
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--input takes name=value, not ${JSON.stringify(kv)}`);
    inputs[kv.slice(0, eq)] = inputValue(kv.slice(eq + 1));
  }
  return { inputs, rest };
}

const fmtS = (ms: number): string =>
  ms < 10_000
    ? `${(ms / 1000).toFixed(1)}s`
    : ms < 600_000
      ? `${Math.round(ms / 1000)}s`
      : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
const usd = (n: unknown): string => (typeof n !== 'number' ? '$?' : `$${n.toFixed(n >= 1 ? 2 : n >= 0.01 ? 4 : 6)}`);
const bar = (done: number, total: number, width = 20): string => {
  const n = total > 0 ? Math.round((done / total) * width) : width;
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${done}/${total}`;
};
const clip = (s: string, n = 160): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Prints a run's progress events as lines; a foreach's bar redraws in place on a terminal. */
export class ProgressPrinter {
  private started = new Map<string, number>();
  private lastBar: string | null = null;
  private barShownAt = new Map<string, number>();

  constructor(
    private readonly out: Out,
    private readonly tty: boolean,
    private readonly runId: string,
  ) {}

  private line(s: string): void {
    if (this.lastBar !== null && this.tty) process.stdout.write('\r\x1b[K');
    this.lastBar = null;
    this.out(s);
  }

  handle(ev: EventFrame): 'finished' | null {
    const d = ev.data;
    if (d.run_id !== this.runId) return null;
    const step = String(d.step ?? '');
    const now = Date.now();
    switch (ev.event) {
      case 'workflow:started':
        this.line(
          `run ${this.runId}: ${String(d.workflow)}, ${(d.steps as unknown[]).length} steps${d.budget_usd ? `, budget ${usd(d.budget_usd)}` : ''}${d.resumed ? ' (resumed after a restart)' : ''}`,
        );
        return null;
      case 'workflow:step_started':
        if (d.item === null || d.item === undefined) {
          this.started.set(step, now);
          this.line(`  ▶ ${step}${Number(d.attempt) > 1 ? ` (attempt ${String(d.attempt)})` : ''}`);
        } else if (!this.started.has(step)) {
          this.started.set(step, now);
          this.line(`  ▶ ${step} (foreach)`);
        }
        return null;
      case 'workflow:step_finished': {
        const t0 = this.started.get(step);
        const el = t0 === undefined ? '' : ` ${fmtS(now - t0)}`;
        const p = d.progress as { done: number; total: number } | null;
        if (d.item !== null && d.item !== undefined && p) {
          const text = `  ${step} ${bar(p.done, p.total)}`;
          if (this.tty) {
            if (this.lastBar !== null) process.stdout.write('\r\x1b[K');
            process.stdout.write(text);
            this.lastBar = text;
          } else if (p.done === p.total || now - (this.barShownAt.get(step) ?? 0) > 2000) {
            this.barShownAt.set(step, now);
            this.out(text);
          }
          return null;
        }
        const mark = d.status === 'skipped' ? '–' : d.status === 'succeeded' ? '✓' : '✗';
        this.line(`  ${mark} ${step} ${String(d.status)}${el}${p ? ` (${p.done}/${p.total} items)` : ''}`);
        return null;
      }
      case 'workflow:step_failed': {
        const e = d.error as { code: string; message: string };
        const item = d.item !== null && d.item !== undefined ? ` item ${String(d.item)}` : '';
        this.line(
          `  ✗ ${step}${item} attempt ${String(d.attempt)}: ${e.code} ${clip(e.message)}${d.will_retry ? ` (retry in ${String(d.retry_in_s)}s)` : ''}`,
        );
        return null;
      }
      case 'workflow:waiting':
        this.line(
          `  ⏸ ${step} waits: ${clip(String(d.prompt))}\n    release it: daemon-control run signal ${this.runId} ${step} '{"ok": true}'`,
        );
        return null;
      case 'workflow:replanned':
        this.line(
          `  ↻ replanned after ${String(d.failed_step)} failed: version ${String(d.version)}, replaced ${(d.replaced as string[]).join(', ')} with ${(d.added as string[]).join(', ')}`,
        );
        return null;
      case 'workflow:finished': {
        const e = d.error as { code: string; message: string } | null;
        this.line(
          `${String(d.status)} in ${fmtS(Number(d.duration_ms))}, ${usd(d.cost_usd)}${e ? `: ${e.code} ${clip(e.message)}` : ''}`,
        );
        return 'finished';
      }
      default:
        return null;
    }
  }
}

function newRunId(): string {
  return `r${Date.now().toString(36)}${Math.floor(Math.random() * 0xffffffff)
    .toString(16)
    .padStart(8, '0')}`;
}

async function withClient(cli: WorkflowCli, fn: (c: EventClient) => Promise<number>): Promise<number> {
  const c = await cli.connect();
  if (!c) {
    cli.err('agentd is not running');
    return 1;
  }
  try {
    return await fn(c);
  } catch (e) {
    if (e instanceof DaemonError) {
      cli.err(`${e.code}: ${e.message}`);
      const issues = e.details?.issues as Array<{ step?: string | null; message: string }> | undefined;
      for (const i of issues?.slice(1, 10) ?? []) cli.err(`  ${i.step ? `step "${i.step}": ` : ''}${i.message}`);
      return 1;
    }
    throw e;
  } finally {
    await c.close();
  }
}

/** `run ...`: start a workflow and follow it, or a run subcommand. */
export async function runCommand(args: string[], cli: WorkflowCli): Promise<number> {
  const sub = args[0];
  if (sub === 'status' || sub === 'cancel' || sub === 'signal') return runSub(sub, args.slice(1), cli);
  const { inputs, rest } = takeInputs(args);
  const { values, positionals } = parseCommand(
    {
      synopsis: 'run <workflow> [--input k=v ...] [--budget USD] [--detach] [--json]',
      options: {
        budget: { type: 'string' },
        detach: { type: 'boolean' },
        json: { type: 'boolean' },
        'run-id': { type: 'string' },
      },
      positionals: ['a workflow name'],
    },
    rest,
  );
  let budget: number | undefined;
  if (values.budget !== undefined) {
    budget = Number(values.budget);
    if (!Number.isFinite(budget) || budget <= 0)
      throw new UsageError(`--budget takes a positive amount in USD, not ${JSON.stringify(values.budget)}`);
  }
  const runId = (values['run-id'] as string | undefined) ?? newRunId();
  if (!RUN_ID_RE.test(runId)) throw new UsageError('--run-id: letters, digits, _ and - (1-40)');
  return withClient(cli, async (c) => {
    const data = {
      workflow: positionals[0],
      inputs,
      run_id: runId,
      ...(budget !== undefined ? { budget_usd: budget } : {}),
    };
    if (values.detach) {
      const r = await c.request('workflow:start', data);
      cli.out(values.json ? JSON.stringify(r) : `run ${runId} ${String(r.status)}`);
      return 0;
    }
    const printer = new ProgressPrinter(values.json ? () => undefined : cli.out, cli.tty && !values.json, runId);
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    // Subscribed before the start, so no event of the run is missed.
    await c.subscribe(['workflow:*'], (ev) => {
      if (printer.handle(ev) === 'finished') done();
    });
    const r = await c.request('workflow:start', data);
    if (r.existing) cli.err(`run ${runId} already exists; following it`);
    if (!['succeeded', 'failed', 'cancelled', 'budget_exhausted'].includes(String(r.status))) await finished;
    const st = await c.request('workflow:status', { run_id: runId });
    if (values.json) cli.out(JSON.stringify(st));
    else cli.out(`outputs: ${clip(JSON.stringify(st.outputs), 2000)}`);
    return st.status === 'succeeded' ? 0 : 1;
  });
}

async function runSub(sub: 'status' | 'cancel' | 'signal', args: string[], cli: WorkflowCli): Promise<number> {
  if (sub === 'signal') {
    const { positionals } = parseCommand(
      { synopsis: 'run signal <run_id> <step> [json]', positionals: ['a run id', 'a step', 'json?'] },
      args,
    );
    let data: unknown = null;
    if (positionals[2] !== undefined) {
      try {
        data = JSON.parse(positionals[2]);
      } catch (e) {
        throw new UsageError(`signal data is not valid JSON: ${(e as Error).message}`);
      }
    }
    return withClient(cli, async (c) => {
      const r = await c.request('workflow:signal', { run_id: positionals[0], step: positionals[1], data });
      cli.out(`signalled ${String(r.step)}; run ${String(r.run_id)} is ${String(r.status)}`);
      return 0;
    });
  }
  const { values, positionals } = parseCommand(
    {
      synopsis: `run ${sub} <run_id>${sub === 'status' ? ' [--json]' : ''}`,
      options: sub === 'status' ? { json: { type: 'boolean' } } : {},
      positionals: ['a run id'],
    },
    args,
  );
  return withClient(cli, async (c) => {
    if (sub === 'cancel') {
      const r = await c.request('workflow:cancel', { run_id: positionals[0] });
      cli.out(`run ${String(r.run_id)} ${String(r.status)}`);
      return 0;
    }
    const st = await c.request('workflow:status', { run_id: positionals[0] });
    if (values.json) {
      cli.out(JSON.stringify(st, null, 2));
      return 0;
    }
    cli.out(
      `run ${String(st.run_id)}: ${String(st.workflow)} ${String(st.status)}, ${usd(st.cost_usd)}${st.version !== 1 ? `, version ${String(st.version)}` : ''}`,
    );
    for (const [id, s] of Object.entries(st.steps as Record<string, Record<string, unknown>>)) {
      const items = s.items as { total: number; done: number; failed: number } | undefined;
      const t =
        typeof s.started_at === 'number' && typeof s.finished_at === 'number'
          ? ` ${fmtS((s.finished_at - s.started_at) * 1000)}`
          : '';
      const err = s.error as { code: string; message: string } | undefined;
      cli.out(
        `  ${id.padEnd(24)} ${String(s.status).padEnd(10)}${items && items.total > 0 ? ` ${bar(items.done, items.total, 10)}` : ''}${t}${err ? `  ${err.code}: ${clip(err.message, 100)}` : ''}`,
      );
    }
    if (st.error) cli.out(`error: ${JSON.stringify(st.error)}`);
    cli.out(`outputs: ${clip(JSON.stringify(st.outputs), 2000)}`);
    return 0;
  });
}

/** `runs`: recent runs, newest first. */
export async function runsCommand(args: string[], cli: WorkflowCli): Promise<number> {
  const { values } = parseCommand(
    {
      synopsis: 'runs [--status S] [--workflow W] [--limit N] [--json]',
      options: {
        status: { type: 'string' },
        workflow: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean' },
      },
    },
    args,
  );
  const limit = values.limit === undefined ? 20 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1)
    throw new UsageError(`--limit takes a positive whole number, not ${JSON.stringify(values.limit)}`);
  return withClient(cli, async (c) => {
    const r = await c.request<{ runs: Array<Record<string, unknown>> }>('workflow:runs', {
      limit,
      ...(values.status ? { status: values.status } : {}),
      ...(values.workflow ? { workflow: values.workflow } : {}),
    });
    // Runs for a goal (workflow:run_goal, workflow:plan, workflow:start with a goal) learned or followed a
    // trace: the trace plugin says which, and what each saved.
    const saved = new Map<string, unknown>();
    const modes = new Map<string, string>();
    if (r.runs.length) {
      const g = await c
        .request<{ runs: Array<{ run_id: string; mode: string; saved_usd: number | null }> }>('trace:runs', {
          run_ids: r.runs.map((x) => String(x.run_id)),
        })
        .catch(() => ({ runs: [] }));
      for (const x of g.runs) {
        saved.set(x.run_id, x.saved_usd);
        modes.set(x.run_id, x.mode);
      }
    }
    if (values.json) {
      cli.out(
        JSON.stringify(
          r.runs.map((x) => (saved.has(String(x.run_id)) ? { ...x, saved_usd: saved.get(String(x.run_id)) } : x)),
        ),
      );
      return 0;
    }
    if (r.runs.length === 0) cli.out('no runs');
    for (const x of r.runs) {
      const started = new Date(Number(x.created_at) * 1000).toISOString().replace('T', ' ').slice(0, 19);
      const dur = typeof x.finished_at === 'number' ? fmtS((x.finished_at - Number(x.created_at)) * 1000) : '';
      const mode =
        modes.get(String(x.run_id)) ?? (x.source === 'learn' || x.source === 'follow' ? String(x.source) : '');
      const s = saved.get(String(x.run_id));
      const tail = typeof s === 'number' ? `  saved ${usd(s)}` : '';
      cli.out(
        `${String(x.run_id).padEnd(22)} ${String(x.workflow).padEnd(22)} ${String(x.status).padEnd(17)} ${mode.padEnd(6)} ${started}  ${dur.padStart(7)}  ${x.cost_usd === null ? '' : usd(x.cost_usd)}${tail}`,
      );
    }
    return 0;
  });
}
