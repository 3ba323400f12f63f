/**
 * The daemon's entry point (runs in the foreground; `daemon-control start` detaches it).
 * Exit codes: 0 clean shutdown, 1 failed to start, 2 bad configuration, 3 another daemon runs.
 */
import { ConfigError, loadConfig } from './config.js';
import { Kernel } from './kernel.js';
import { createLogger } from './log.js';
import { AlreadyRunningError } from './server.js';

async function main(): Promise<void> {
  let config;
  try {
    config = await loadConfig();
  } catch (e) {
    process.stderr.write(`agentd: ${(e as Error).message}\n`);
    process.exit(e instanceof ConfigError ? 2 : 1);
  }
  const pretty = process.env.AGENTD_FOREGROUND === '1' || (process.stderr.isTTY ?? false);
  const { log, flush } = await createLogger({ logsDir: config.paths.logs, level: config.daemon.log_level, pretty });
  const exit = (code: number): void => {
    flush();
    process.exit(code);
  };
  const kernel = new Kernel(config, log, exit);

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
    log.fatal({ err: e }, already ? 'another daemon is running' : 'start failed');
    process.stderr.write(`agentd: ${(e as Error).message}\n`);
    if (!already) kernel.cleanupFiles();
    exit(already ? 3 : e instanceof ConfigError ? 2 : 1);
  }
}

void main();
