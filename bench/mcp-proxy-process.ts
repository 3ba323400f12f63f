/**
 * The floor for any daemon in front of an MCP server, for the MCP benchmark: a bare Node process that
 * reads agentd's request frames from a Unix socket, makes each `mcp:call` as a tool call with the SDK's
 * client on one stdio server, and answers with agentd's response frame, with nothing else (no
 * validation, routing, events or supervision). Reached with the same client library as the daemon, its
 * overhead over a direct SDK call is what the two extra process hops and the SDK client's own work
 * cost on the machine.
 * Usage: mcp-proxy-process.ts <socket path> <command> [args...]; prints "ready", serves until stdin ends.
 */
import fs from 'node:fs';
import net from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [socketPath, command, ...args] = process.argv.slice(2) as [string, string, ...string[]];
const client = new Client({ name: 'bench-proxy', version: '1' });
await client.connect(new StdioClientTransport({ command, args, stderr: 'ignore' }));

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
        data: { tool: string; arguments: Record<string, unknown> };
      };
      const head = `{"kind":"response","event":${JSON.stringify(req.event)},"correlation_id":${JSON.stringify(req.correlation_id)}`;
      client.callTool({ name: req.data.tool, arguments: req.data.arguments }).then(
        (r) =>
          socket.write(
            `${head},"data":${JSON.stringify({ content: r.content, is_error: r.isError === true })},"timestamp":${Date.now() / 1000}}\n`,
          ),
        (err: unknown) =>
          socket.write(`${head},"error":${JSON.stringify({ code: 'UNAVAILABLE', message: String(err) })}}\n`),
      );
    }
  });
});

fs.rmSync(socketPath, { force: true });
server.listen(socketPath, () => process.stdout.write('ready\n'));
const stop = (): void => {
  server.close();
  fs.rmSync(socketPath, { force: true });
  void client.close().finally(() => process.exit(0));
};
process.on('disconnect', stop);
process.stdin.on('end', stop);
process.stdin.resume();
setTimeout(stop, 30 * 60_000).unref();
