/** Shared setup of the MCP tests: `daemon-control mcp` under the SDK's client, and the npm servers' commands. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ROOT, type DaemonHandle } from '../helpers/daemon-process.js';

export const DAEMON_CONTROL = path.join(ROOT, 'daemon-control.ts');
const pkg = (name: string): string =>
  path.join(ROOT, 'node_modules', '@modelcontextprotocol', name, 'dist', 'index.js');

/** The reference servers from npm, run from node_modules (no network): stdio commands for mcp.servers. */
export const everythingServer = (): { command: string; args: string[] } => ({
  command: process.execPath,
  args: [pkg('server-everything'), 'stdio'],
});
export const filesystemServer = (dir: string): { command: string; args: string[] } => ({
  command: process.execPath,
  args: [pkg('server-filesystem'), dir],
});

/** Environment that points a daemon-control process at this daemon. */
export function daemonEnv(d: DaemonHandle): Record<string, string> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    AGENTD_HOME: d.home,
    AGENTD_SOCKET: d.socketPath,
  };
  delete env.NODE_OPTIONS;
  return env;
}

/** `daemon-control mcp` as the SDK's own client sees it. */
export async function connectMcp(
  d: DaemonHandle,
  args: string[] = [],
): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: DAEMON_CONTROL,
    args: ['mcp', ...args],
    env: daemonEnv(d),
    cwd: ROOT,
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const client = new Client({ name: 'agentd-test', version: '1' });
  await client.connect(transport);
  return { client, transport, stderr: () => err };
}

/** The text of a tool result's first content block. */
export const textOf = (r: unknown): string => {
  const c = (r as CallToolResult).content?.[0];
  return c && c.type === 'text' ? c.text : '';
};

export const tempDir = (prefix: string): string => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));

/** test/fixtures/mcp-test-server.ts as a stdio command (mode: --no-init, --exit-on-start). */
export const testServer = (...mode: string[]): { command: string; args: string[] } => ({
  command: process.execPath,
  args: [
    '--import',
    path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs'),
    path.join(ROOT, 'test', 'fixtures', 'mcp-test-server.ts'),
    ...mode,
  ],
});
