/**
 * The baseline: a bare newline-JSON echo server on a Unix socket. It parses each line and answers
 * with a response-shaped frame, as the daemon does, minus routing, validation and plugins.
 */
import fs from 'node:fs';
import net from 'node:net';

const socketPath = process.argv[2];
if (!socketPath) throw new Error('usage: echo-server <socket>');
fs.rmSync(socketPath, { force: true });
const server = net.createServer((s) => {
  let buf = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => {
    buf += d;
    let nl: number;
    let start = 0;
    while ((nl = buf.indexOf('\n', start)) >= 0) {
      const msg = JSON.parse(buf.slice(start, nl)) as { event: string; correlation_id: unknown; data: unknown };
      start = nl + 1;
      s.write(
        JSON.stringify({
          kind: 'response',
          event: msg.event,
          correlation_id: msg.correlation_id,
          data: msg.data,
          timestamp: Date.now() / 1000,
        }) + '\n',
      );
    }
    buf = buf.slice(start);
  });
  s.on('error', () => undefined);
});
server.listen(socketPath, () => process.stdout.write('ready\n'));
// Bounded: the bench kills it, and it never outlives its parent.
process.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(0), 30 * 60_000).unref();
