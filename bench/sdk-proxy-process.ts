/**
 * The floor for any daemon in front of the SDK, for the completion benchmark: a bare Node process
 * that reads agentd's request frames from a Unix socket, makes the same SDK streaming call for each
 * `prompt` and answers with agentd's response frame, with nothing else (no queue, journal, budget or
 * validation). Reached with the same client library as the daemon, its overhead over a direct SDK call
 * is what the two extra process hops alone cost on the machine.
 * Usage: sdk-proxy-process.ts <socket path> <Messages API URL>; prints "ready", serves until stdin ends.
 */
import fs from 'node:fs';
import net from 'node:net';
import Anthropic from '@anthropic-ai/sdk';

const [socketPath, baseURL] = process.argv.slice(2) as [string, string];
const sdk = new Anthropic({ apiKey: 'bench', baseURL, maxRetries: 0 });

const server = net.createServer((socket) => {
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const req = JSON.parse(line) as {
        event: string;
        correlation_id: string;
        data: { prompt: string; max_tokens: number };
      };
      void sdk.messages
        .stream({
          model: 'test-model',
          max_tokens: req.data.max_tokens,
          messages: [{ role: 'user', content: req.data.prompt }],
        })
        .finalMessage()
        .then(
          (msg) => {
            const data = {
              text: msg.content.map((b) => (b.type === 'text' ? b.text : '')).join(''),
              content: msg.content,
              stop_reason: msg.stop_reason,
              usage: msg.usage,
              model: msg.model,
            };
            socket.write(
              `{"kind":"response","event":${JSON.stringify(req.event)},"correlation_id":${JSON.stringify(req.correlation_id)},"data":${JSON.stringify(data)},"timestamp":${Date.now() / 1000}}\n`,
            );
          },
          (err: unknown) => {
            socket.write(
              `{"kind":"response","event":${JSON.stringify(req.event)},"correlation_id":${JSON.stringify(req.correlation_id)},"error":${JSON.stringify({ code: 'UNAVAILABLE', message: String(err) })}}\n`,
            );
          },
        );
    }
  });
});

fs.rmSync(socketPath, { force: true });
server.listen(socketPath, () => process.stdout.write('ready\n'));
const stop = (): void => {
  server.close();
  fs.rmSync(socketPath, { force: true });
  process.exit(0);
};
process.on('disconnect', stop);
process.stdin.on('end', stop);
process.stdin.resume();
setTimeout(stop, 30 * 60_000).unref();
