#!/usr/bin/env -S sh -c 'exec node --no-warnings "$(dirname "$(readlink -f "$0")")/bin/daemon-control.mjs" "$@"'
/**
 * daemon-control: the operator CLI. Exit codes scripts can trust: 0 ok/healthy, 1 unhealthy, not
 * running or an error response, 2 usage. The shebang finds bin/daemon-control.mjs beside this file
 * (not in the current directory), so the command works from anywhere and through the symlink `npm
 * link` makes; that launcher runs this file prebuilt into a bundle, rebuilt when a source changes.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventClient } from './client/event-client.js';
import { builtDaemonArgs, ensureBuilt } from './daemon/build.js';
import { configuredSocketPath } from './daemon/socket-config.js';
import { DaemonError } from './client/errors.js';
import { closest } from 'fastest-levenshtein';
import type { EventFrame } from './client/protocol.js';
import { resolveSocketPath } from './client/socket-path.js';
import { sleep } from './client/timing.js';
import { parseCommand, seconds, UsageError, type CommandSpec } from './interfaces/control/args.js';
import { showLogs } from './interfaces/control/logs.js';
import { runCommand, runsCommand, WORKFLOW_USAGE } from './interfaces/control/workflow.js';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const home = path.resolve(process.env.AGENTD_HOME ?? 'var');
/** Set in main(): reading agentd.yaml is asynchronous. */
let socketPath = resolveSocketPath();
const pidFile = path.join(home, 'run', 'daemon.pid');
const logFile = path.join(home, 'logs', 'daemon', 'daemon.log');

const USAGE = `usage: daemon-control <command> [options]

  start [--foreground]          start the daemon (detached); returns once it answers system:health
  stop [--timeout S]            graceful stop via the socket, then SIGTERM, then SIGKILL
  restart [--timeout S]         stop (when running), then start: picks up a new environment or config
  status                        is it running? pid, socket, uptime
  health [--json]               system:health (exit 0 healthy, 1 unhealthy or not running)
  logs [-f] [-n N] [--json]     the daemon's log (readable on a terminal, JSON lines when piped)
  emit <event> [json]           send one request, print the answer (exit 1 on an error answer)
  monitor [patterns...]         the live TUI, its log filtered by the patterns (or --filter P)
  mcp [--expose LIST]           serve the daemon's events as MCP tools on stdio (for Claude Code, desktop clients)
  chat [--profile P | --agent ID]  talk with an agent: streamed, tools inline; piped stdin → one reply
  sandbox-image build [...]     build the default sandbox image offline (debootstrap + docker import)
  build                         bundle daemon and plugins into .build/ (start does it when stale)
${WORKFLOW_USAGE}

exit codes: 0 ok, 1 failed, unhealthy or not running, 2 usage
environment: AGENTD_HOME (runtime dir, default ./var), AGENTD_SOCKET, AGENTD_CONFIG, AGENTD_<SECTION>_<KEY>`;

const COMMANDS: Record<string, CommandSpec> = {
  start: { synopsis: 'start [--foreground]', options: { foreground: { type: 'boolean' } } },
  stop: { synopsis: 'stop [--timeout S]', options: { timeout: { type: 'string' } } },
  restart: { synopsis: 'restart [--timeout S]', options: { timeout: { type: 'string' } } },
  status: { synopsis: 'status' },
  health: { synopsis: 'health [--json]', options: { json: { type: 'boolean' } } },
  logs: {
    synopsis: 'logs [-f] [-n N] [--json]',
    options: {
      follow: { type: 'boolean', short: 'f' },
      lines: { type: 'string', short: 'n' },
      json: { type: 'boolean' },
    },
  },
  emit: { synopsis: 'emit <event> [json]', positionals: ['an event name', 'json?'] },
  monitor: {
    synopsis: 'monitor [patterns...] [--filter P]',
    options: { filter: { type: 'string' } },
    positionals: ['patterns...'],
  },
  build: { synopsis: 'build' },
  mcp: { synopsis: 'mcp [--expose LIST]', options: { expose: { type: 'string' } } },
  chat: {
    synopsis: 'chat [--profile P | --agent ID] [--model M]',
    options: { profile: { type: 'string' }, agent: { type: 'string' }, model: { type: 'string' } },
  },
};

const out = (s: string): void => void process.stdout.write(s + '\n');
const err = (s: string): void => void process.stderr.write(s + '\n');

async function connect(timeoutMs = 500): Promise<EventClient | null> {
  try {
    return await EventClient.connect({ socketPath, reconnect: false, connectTimeoutMs: timeoutMs });
  } catch {
    return null;
  }
}

function readPid(): number | null {
  try {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function health(connectTimeoutMs = 500): Promise<Record<string, unknown> | null> {
  const c = await connect(connectTimeoutMs);
  if (!c) return null;
  try {
    return await c.request('system:health', {}, { timeoutMs: 5000 });
  } catch {
    return null;
  } finally {
    await c.close();
  }
}

/**
 * Run the daemon from its transpiled build (rebuilt first when a source changed): it starts in a
 * fraction of the time and memory the TypeScript loader costs. AGENTD_FROM_SOURCE=1 runs the sources.
 */
async function daemonCommand(): Promise<string[]> {
  if (process.env.AGENTD_FROM_SOURCE === '1') return ['--import', 'tsx', path.join(ROOT, 'daemon', 'main.ts')];
  const b = await ensureBuilt(ROOT);
  return builtDaemonArgs(b.entry);
}

type PluginHealth = Record<string, { status: string; reason?: string }>;

async function start(foreground: boolean): Promise<number> {
  const existing = await health();
  if (existing) {
    err(
      `agentd is already running (pid ${existing.pid}, socket ${socketPath}); it keeps the environment and config it started with: use "restart" to apply new ones`,
    );
    return 1;
  }
  const daemonArgs = await daemonCommand();
  if (foreground) {
    const r = spawnSync(process.execPath, daemonArgs, {
      stdio: 'inherit',
      env: { ...process.env, AGENTD_FOREGROUND: '1' },
    });
    return r.status ?? 1;
  }
  fs.mkdirSync(path.join(home, 'logs', 'daemon'), { recursive: true, mode: 0o700 });
  const stdoutFile = path.join(home, 'logs', 'daemon', 'stdout.log');
  const fd = fs.openSync(stdoutFile, 'a');
  // The file keeps every start's output; a failed start shows only its own, from here on.
  const offset = fs.fstatSync(fd).size;
  // The daemon inherits this environment (ANTHROPIC_API_KEY, AGENTD_*) and outlives this command.
  const child = spawn(process.execPath, daemonArgs, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: process.env,
    cwd: process.cwd(),
  });
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? 1));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited !== null) {
      const output = tail(stdoutFile, 20, offset);
      err(`agentd exited during start (code ${exited})${output ? `:\n${output}` : ''}`);
      return 1;
    }
    // Probe tightly: start returns as soon as the daemon answers, not on a coarse tick after.
    const h = await health(10);
    if (h) {
      const plugins = h.plugins as PluginHealth;
      if (!h.healthy) {
        err(`agentd started but is unhealthy: pid ${h.pid}, socket ${socketPath}, status ${h.status}`);
        for (const [name, p] of Object.entries(plugins))
          if (p.status !== 'ok') err(`  ${name}: ${p.status}${p.reason ? ` (${p.reason})` : ''}`);
        err('it keeps running for inspection (health, logs); fix the cause, then run "restart"');
        return 1;
      }
      out(`agentd started: pid ${h.pid}, socket ${socketPath}, status ${h.status}`);
      for (const [name, p] of Object.entries(plugins))
        if (p.status !== 'ok') out(`  ${name}: ${p.status}${p.reason ? ` (${p.reason})` : ''}`);
      return 0;
    }
    await sleep(10);
  }
  err('agentd did not answer system:health within 30 s; see ' + stdoutFile);
  return 1;
}

/** The last `n` lines of a file from byte `from` on. */
function tail(file: string, n: number, from = 0): string {
  try {
    const text = fs.readFileSync(file).subarray(from).toString('utf8').trimEnd();
    return text ? text.split('\n').slice(-n).join('\n') : '';
  } catch {
    return '';
  }
}

async function stop(timeoutS: number): Promise<number> {
  const pid = readPid();
  const c = await connect();
  if (!c && (pid === null || !alive(pid))) {
    err('agentd is not running');
    return 1;
  }
  const deadline = Date.now() + timeoutS * 1000;
  let outcome: Record<string, unknown> | null = null;
  if (c) {
    // Subscribe first so the outcome (which plugins did not finish) is reported.
    const done = new Promise<void>((resolve) => {
      void c
        .subscribe(['system:shutdown_complete'], (ev: EventFrame) => {
          outcome = ev.data;
          resolve();
        })
        .then(() => c.request('system:shutdown', { reason: 'daemon-control stop' }))
        .catch(() => resolve());
      c.once('disconnect', () => resolve());
    });
    await Promise.race([done, sleep(timeoutS * 1000)]);
  }
  const waitExit = async (until: number): Promise<boolean> => {
    while (Date.now() < until) {
      if (pid === null ? !fs.existsSync(socketPath) : !alive(pid)) return true;
      await sleep(50);
    }
    return false;
  };
  if (await waitExit(deadline)) {
    const unfinished = (outcome as { unfinished?: string[] } | null)?.unfinished ?? [];
    out(`agentd stopped gracefully${unfinished.length ? ` (did not finish in time: ${unfinished.join(', ')})` : ''}`);
    return 0;
  }
  if (pid !== null && alive(pid)) {
    process.kill(pid, 'SIGTERM');
    if (await waitExit(Date.now() + 5000)) {
      out('agentd stopped after SIGTERM');
      return 0;
    }
    process.kill(pid, 'SIGKILL');
    await waitExit(Date.now() + 5000);
    for (const f of [socketPath, pidFile]) fs.rmSync(f, { force: true });
    out('agentd killed with SIGKILL (it did not stop in time)');
    return 0;
  }
  err('agentd did not stop and no pid is known');
  return 1;
}

async function status(): Promise<number> {
  const h = await health();
  if (!h) {
    const pid = readPid();
    out(pid && alive(pid) ? `agentd pid ${pid} is alive but not answering on ${socketPath}` : 'agentd is not running');
    return 1;
  }
  out(`agentd running: pid ${h.pid}, socket ${socketPath}, uptime ${h.uptime_s}s, status ${h.status}`);
  return 0;
}

async function healthCmd(json: boolean): Promise<number> {
  const h = await health();
  if (!h) {
    if (json) out(JSON.stringify({ status: 'not_running', healthy: false }));
    else err(`agentd is not running (no answer on ${socketPath})`);
    return 1;
  }
  if (json) out(JSON.stringify(h, null, 2));
  else {
    out(
      `status: ${h.status}  pid: ${h.pid}  uptime: ${h.uptime_s}s  connections: ${h.connections}  events/s: ${(h.events as { per_s: number }).per_s}`,
    );
    for (const [name, p] of Object.entries(h.plugins as Record<string, { status: string; reason?: string }>)) {
      out(`  ${name.padEnd(12)} ${p.status}${p.reason ? `  ${p.reason}` : ''}`);
    }
  }
  return h.healthy ? 0 : 1;
}

async function logs(values: Record<string, string | boolean | undefined>): Promise<number> {
  const n = values.lines === undefined ? 50 : Number(values.lines);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`-n takes a count of lines, not ${JSON.stringify(values.lines)}`);
  if (!fs.existsSync(logFile)) {
    err(`no log at ${logFile}`);
    return 1;
  }
  const json = values.json === true || !process.stdout.isTTY;
  return showLogs({
    file: logFile,
    lines: n,
    follow: values.follow === true,
    json,
    write: (s) => void process.stdout.write(s),
  });
}

async function emit(event: string, json: string | undefined): Promise<number> {
  let data: Record<string, unknown> = {};
  if (json !== undefined) {
    try {
      data = JSON.parse(json) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`the data for ${event} is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data))
      throw new UsageError(`the data for ${event} must be a JSON object, e.g. '{}'`);
  }
  const c = await connect();
  if (!c) {
    err(`agentd is not running (no answer on ${socketPath})`);
    return 1;
  }
  try {
    const r = await c.request(event, data, { timeoutMs: Number(process.env.AGENTD_EMIT_TIMEOUT_MS ?? 120_000) });
    out(JSON.stringify(r, null, 2));
    return 0;
  } catch (e) {
    const de = e as DaemonError;
    err(JSON.stringify({ error: { code: de.code, message: de.message, details: de.details } }, null, 2));
    return 1;
  } finally {
    await c.close();
  }
}

function monitor(patterns: string[], filter: string | undefined): number {
  const entry = path.join(ROOT, 'interfaces', 'monitor', 'main.tsx');
  if (!fs.existsSync(entry)) {
    err('the TUI monitor is not installed in this checkout');
    return 1;
  }
  const joined = [...patterns, ...(filter ? [filter] : [])].join(' ');
  const tsx = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');
  const r = spawnSync(
    process.execPath,
    ['--import', tsx, '--no-warnings', entry, '--socket', socketPath, ...(joined ? ['--filter', joined] : [])],
    { stdio: 'inherit' },
  );
  return r.status ?? 1;
}

const splitList = (v: string | boolean | undefined): string[] | undefined =>
  typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;

function sandboxImage(args: string[]): number {
  if (args[0] !== 'build') throw new UsageError('sandbox-image build [--tag NAME] [--force]');
  const script = path.join(ROOT, 'scripts', 'sandbox-image.sh');
  const r = spawnSync('bash', [script, ...args], { stdio: 'inherit' });
  return r.status ?? 1;
}

async function main(argv: string[]): Promise<number> {
  socketPath = await configuredSocketPath();
  const [cmd, ...args] = argv;
  if (cmd === undefined) {
    err(USAGE);
    return 2;
  }
  if (cmd === 'help' || cmd === '-h' || cmd === '--help') {
    out(USAGE);
    return 0;
  }
  if (cmd === 'sandbox-image') return sandboxImage(args); // the script checks its own arguments
  if (cmd === 'run' || cmd === 'runs') {
    const cli = { connect: () => connect(), out, err, tty: process.stdout.isTTY === true };
    return cmd === 'run' ? runCommand(args, cli) : runsCommand(args, cli);
  }
  const spec = COMMANDS[cmd];
  if (!spec) {
    const near = closest(cmd, [...Object.keys(COMMANDS), 'sandbox-image', 'run', 'runs']);
    throw new UsageError(`unknown command "${cmd}" (did you mean ${near}? "daemon-control help" lists them)`);
  }
  const { values, positionals } = parseCommand(spec, args);
  switch (cmd) {
    case 'start':
      return start(values.foreground === true);
    case 'stop':
      return stop(seconds(values.timeout, 'timeout', 40));
    case 'restart': {
      const timeoutS = seconds(values.timeout, 'timeout', 40);
      const pid = readPid();
      if ((await health()) || (pid !== null && alive(pid))) {
        const stopped = await stop(timeoutS);
        if (stopped !== 0) return stopped;
      }
      return start(false);
    }
    case 'status':
      return status();
    case 'health':
      return healthCmd(values.json === true);
    case 'logs':
      return logs(values);
    case 'emit':
      return emit(positionals[0]!, positionals[1]);
    case 'monitor':
      return monitor(positionals, values.filter as string | undefined);
    case 'mcp':
      // Loaded here, not at the top: the MCP SDK is not worth loading for every other command.
      return (await import('./interfaces/control/mcp-server.js')).runMcpServer({
        socketPath,
        expose: splitList(values.expose),
        warn: err,
      });
    case 'chat':
      return (await import('./interfaces/control/chat.js')).runChat({
        socketPath,
        profile: values.profile as string | undefined,
        agent: values.agent as string | undefined,
        model: values.model as string | undefined,
      });
    default: {
      const b = await ensureBuilt(ROOT, true);
      out(`built ${b.entry} in ${b.ms} ms`);
      return 0;
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof UsageError) {
      err(`daemon-control: ${e.message}`);
      process.exit(2);
    }
    err(`daemon-control: ${(e as Error).message}`);
    process.exit(1);
  },
);
