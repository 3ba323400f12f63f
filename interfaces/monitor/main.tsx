/**
 * Entry point: `daemon-control monitor` runs `node --import tsx interfaces/monitor/main.tsx --socket <path>`.
 *
 *   --socket <path>   the daemon's socket (default: AGENTD_SOCKET, else $AGENTD_HOME/run/daemon.sock)
 *   --filter <text>   start with this log filter (e.g. "agent:* completion:error")
 *   [patterns...]     the same as --filter with the patterns joined by spaces
 *
 * Exit codes: 0 after `q`, 1 when the daemon does not answer, 2 on bad arguments or without a terminal.
 */
import { parseArgs } from 'node:util';

// Ink renders only the last frame when it believes it runs in CI (is-in-ci reads CI at import).
// A monitor on a real terminal is interactive wherever it runs, so drop the hint before Ink loads.
if (process.stdout.isTTY) {
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
}

// React's development build records a performance mark per render; the monitor must stay cheap.
process.env.NODE_ENV ??= 'production';

const USAGE = 'usage: monitor [--socket PATH] [--filter PATTERNS] [PATTERN...]';

async function main(): Promise<number> {
  let args;
  try {
    const parsed = parseArgs({
      options: { socket: { type: 'string' }, filter: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
    args = parsed.values;
    const filter = [...parsed.positionals, ...(args.filter ? [args.filter] : [])].join(' ');
    args.filter = filter || undefined;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [
    { default: React },
    { render },
    { EventClient, defaultSocketPath },
    { App },
    { ThemeContext, themeFromEnv },
    { parseFilter },
  ] = await Promise.all([
    import('react'),
    import('ink'),
    import('../../client/index.js'),
    import('./app.js'),
    import('./theme.js'),
    import('./state/patterns.js'),
  ]);
  let initialFilter;
  try {
    initialFilter = args.filter ? parseFilter(args.filter) : undefined;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    // Keys need a raw-mode terminal; for scripts there is `daemon-control emit monitor:events` or the client library.
    process.stderr.write('monitor: needs an interactive terminal (stdin and stdout a TTY)\n');
    return 2;
  }
  const socketPath = args.socket ?? defaultSocketPath();
  let client;
  try {
    client = await EventClient.connect({ socketPath, connectTimeoutMs: 3000 });
  } catch (e) {
    process.stderr.write(
      `monitor: cannot reach the daemon at ${socketPath}: ${(e as Error).message}\n(start it with: ./daemon-control.ts start)\n`,
    );
    return 1;
  }
  const tty = process.stdout.isTTY === true;
  // The alternate screen keeps the user's scrollback intact and leaves no half frame behind on exit.
  if (tty) process.stdout.write('\x1b[?1049h\x1b[H');
  const restore = (): void => {
    if (tty) process.stdout.write('\x1b[?1049l');
  };
  process.once('exit', restore);
  // AGENTD_MONITOR_STATS=<file>: write render counts and times there on exit (for the CPU measurements).
  const statsFile = process.env.AGENTD_MONITOR_STATS;
  const stats = { renders: 0, render_ms: 0, max_render_ms: 0, started: Date.now() };
  const app = render(
    React.createElement(
      ThemeContext.Provider,
      { value: themeFromEnv() },
      React.createElement(App, { client, initialFilter }),
    ),
    {
      exitOnCtrlC: true,
      maxFps: 10,
      patchConsole: false,
      onRender: ({ renderTime }) => {
        stats.renders++;
        stats.render_ms += renderTime;
        stats.max_render_ms = Math.max(stats.max_render_ms, renderTime);
      },
    },
  );
  // A kill or a closed terminal leaves the way `q` does: the screen restored, the socket closed.
  for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.once(sig, () => app.unmount());
  await app.waitUntilExit();
  await client.close();
  restore();
  if (statsFile) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      statsFile,
      JSON.stringify({ ...stats, seconds: (Date.now() - stats.started) / 1000, cpu: process.cpuUsage() }) + '\n',
    );
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`monitor: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
