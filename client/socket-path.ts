import path from 'node:path';

/** Where the daemon's socket is by default: AGENTD_SOCKET, else $AGENTD_HOME/run/daemon.sock (home default ./var). */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AGENTD_SOCKET) return path.resolve(env.AGENTD_SOCKET);
  return path.resolve(env.AGENTD_HOME ?? 'var', 'run', 'daemon.sock');
}
