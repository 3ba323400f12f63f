/**
 * The daemon's socket as the daemon itself resolves it, for the tools that look for it
 * (daemon-control): `daemon.socket` of agentd.yaml included. The config is read only when there is
 * a file (or an AGENTD_DAEMON_SOCKET override) to read; one the daemon could not read gives the default.
 */
import fs from 'node:fs';
import path from 'node:path';
import { resolveSocketPath } from '../client/socket-path.js';

export async function configuredSocketPath(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<string> {
  const file = path.resolve(cwd, env.AGENTD_CONFIG ?? 'agentd.yaml');
  if (env.AGENTD_SOCKET || !(fs.existsSync(file) || env.AGENTD_DAEMON_SOCKET)) return resolveSocketPath({ env, cwd });
  const { loadConfig } = await import('./config.js');
  return loadConfig(env, cwd).then(
    (c) => c.paths.socket,
    () => resolveSocketPath({ env, cwd }),
  );
}
