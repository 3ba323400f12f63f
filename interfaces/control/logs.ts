/**
 * `daemon-control logs`: the daemon's pino JSON lines, readable on a terminal (the same format
 * `start --foreground` prints), raw when piped or asked for with --json so `| jq` keeps working.
 */
import fs from 'node:fs';

export interface LogsOptions {
  file: string;
  lines: number;
  follow: boolean;
  /** Raw JSON lines instead of the readable form. */
  json: boolean;
  write: (s: string) => void;
}

type Format = (line: string) => string;

async function formatter(json: boolean): Promise<Format> {
  if (json) return (line) => line + '\n';
  const { prettyFactory } = await import('pino-pretty');
  const pretty = prettyFactory({
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'hostname',
  });
  // A line that is not pino JSON (a truncated write, say) is shown as it is rather than dropped.
  return (line) => {
    try {
      return pretty(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return line + '\n';
    }
  };
}

function lastLines(file: string, n: number): { text: string[]; size: number } {
  const buf = fs.readFileSync(file);
  const lines = buf.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return { text: n === 0 ? [] : lines.slice(-n), size: buf.length };
}

/** Print the last lines, then (with follow) new lines as they are written; never returns when following. */
export async function showLogs(o: LogsOptions): Promise<number> {
  const format = await formatter(o.json);
  const { text, size } = lastLines(o.file, o.lines);
  for (const line of text) o.write(format(line));
  if (!o.follow) return 0;
  let pos = size;
  let partial = '';
  return new Promise<number>(() => {
    fs.watchFile(o.file, { interval: 250 }, (cur) => {
      if (cur.size < pos) pos = 0; // rotated or truncated: start over
      if (cur.size === pos) return;
      const fd = fs.openSync(o.file, 'r');
      const buf = Buffer.alloc(cur.size - pos);
      fs.readSync(fd, buf, 0, buf.length, pos);
      fs.closeSync(fd);
      pos = cur.size;
      const chunk = partial + buf.toString('utf8');
      const lines = chunk.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line) o.write(format(line));
    });
  });
}
