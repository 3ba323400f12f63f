/**
 * pino JSON logs to $AGENTD_HOME/logs/daemon/daemon.log; in the foreground on a terminal, also
 * pretty-printed. Secrets are redacted by key name as a second line of defence.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { redactDeep, redactSecrets } from './redact.js';

export const REDACT_PATHS = [
  '*.api_key',
  '*.apiKey',
  '*.password',
  '*.token',
  '*.secret',
  '*.authorization',
  'config.*.api_key',
  'config.*.password',
  'headers.authorization',
  'headers["x-api-key"]',
];

export interface LogOptions {
  logsDir: string;
  level: string;
  /** Also write human-readable lines to stderr (foreground mode on a TTY). */
  pretty: boolean;
}

/** Async only because pino-pretty is imported when a terminal wants it, not on every start. */
export async function createLogger(opts: LogOptions): Promise<{ log: Logger; flush: () => void; file: string }> {
  const dir = path.join(opts.logsDir, 'daemon');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'daemon.log');
  const fileDest = pino.destination({ dest: file, sync: false, mkdir: true });
  // Open before anything is logged: a start that fails at once must still leave its reason in the file.
  await new Promise<void>((resolve, reject) => {
    fileDest.once('ready', () => resolve());
    fileDest.once('error', reject);
  });
  const streams: pino.StreamEntry[] = [{ level: opts.level as pino.Level, stream: fileDest }];
  if (opts.pretty) {
    const { default: pinoPretty } = await import('pino-pretty');
    // pino-pretty as a stream in this thread: a worker transport would outlive a crash's last lines.
    streams.push({
      level: opts.level as pino.Level,
      stream: pinoPretty({ colorize: process.stderr.isTTY, destination: 2, sync: true }),
    });
  }
  const log = pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Secrets inside URLs, wherever a value or an error quotes one (the fields by key name are above).
      formatters: { log: (obj) => redactDeep(obj, 4) },
      serializers: {
        err: (e: Error) => redactDeep(pino.stdSerializers.err(e) as unknown as Record<string, unknown>, 4),
      },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)) as Parameters<typeof method>,
          );
        },
      },
    },
    pino.multistream(streams),
  );
  return {
    log,
    file,
    flush: () => {
      try {
        fileDest.flushSync();
      } catch {
        /* not yet open */
      }
    },
  };
}
