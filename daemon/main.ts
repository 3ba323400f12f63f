/**
 * The daemon's entry point (runs in the foreground; `daemon-control start` detaches it).
 * Exit codes: 0 clean shutdown, 1 failed to start, 2 bad configuration, 3 another daemon runs.
 */
import { ConfigError, loadConfig } from './config.js';
import { secureHome, UnsafeHomeError } from './home.js';
import { Kernel } from './kernel.js';
import { createLogger } from './log.js';
import { DatabaseOpenError } from './persistence.js';
import { AlreadyRunningError, SocketPathError } from './server.js';

async function main(): Promise<void> {
  // Everything the daemon creates is its own: files 0600, directories 0700 (the socket is made 0600 apart).
  process.umask(0o077);
  let config;
  try {
    config = await loadConfig();
  } catch (e) {
    process.stderr.write(`agentd: ${(e as Error).message}\n`);
    process.exit(e instanceof ConfigError ? 2 : 1);
  }
  try {
    // Before the log or any database is opened there: nothing is written into a home that is not safe.
    secureHome(config.paths);
  } catch (e) {
    process.stderr.write(
      `agentd: ${e instanceof UnsafeHomeError ? 'refusing to start: ' : 'cannot prepare the home: '}${(e as Error).message}\n`,
    );
    process.exit(1);
  }
  const pretty = process.env.AGENTD_FOREGROUND === '1' || (process.stderr.isTTY ?? false);
  const { log, flush } = await createLogger({ logsDir: config.paths.logs, level: config.daemon.log_level, pretty });
  const exit = (code: number): void => {
    flush();
    process.exit(code);
  };
  let kernel: Kernel;
  try {
    kernel = new Kernel(config, log, exit);
  } catch (e) {
    // A damaged or unreadable database: said plainly, in the log and to whoever started us, no stack.
    const message = e instanceof DatabaseOpenError ? e.message : `could not start: ${(e as Error).message}`;
    log.fatal({ reason: message }, 'start failed');
    process.stderr.write(`agentd: ${message}\n`);
    exit(1);
    return;
  }

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      log.info({ signal: sig }, 'signal received, shutting down');
      void kernel.shutdown(sig);
      return;
    }
    // A second signal forces: the operator has decided not to wait.
    log.warn({ signal: sig }, 'second signal, forcing exit');
    kernel.cleanupFiles();
    exit(1);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => log.info('SIGHUP ignored (use plugin:reload)'));
  // Contain what escapes a plugin's own error handling: log it, keep serving.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));

  try {
    await kernel.start();
  } catch (e) {
    const already = e instanceof AlreadyRunningError;
    // Errors the operator can act on are logged as their message; anything else with its stack.
    if (e instanceof SocketPathError || e instanceof DatabaseOpenError || already)
      log.fatal({ reason: (e as Error).message }, already ? 'another daemon is running' : 'start failed');
    else log.fatal({ err: e }, 'start failed');
    process.stderr.write(`agentd: ${(e as Error).message}\n`);
    if (!already) kernel.cleanupFiles();
    exit(already ? 3 : e instanceof ConfigError ? 2 : 1);
  }
}

void main();
