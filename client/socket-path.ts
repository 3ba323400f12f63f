import path from 'node:path';

/**
 * Where the daemon's socket is, the one rule for the daemon, daemon-control and clients:
 * AGENTD_SOCKET, else the configured `daemon.socket`, else $AGENTD_HOME/run/daemon.sock (home
 * default ./var), each relative to `cwd`.
 */
export function resolveSocketPath(opts: { env?: NodeJS.ProcessEnv; cwd?: string; configured?: string } = {}): string {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const home = path.resolve(cwd, env.AGENTD_HOME ?? 'var');
  return path.resolve(cwd, env.AGENTD_SOCKET ?? opts.configured ?? path.join(home, 'run', 'daemon.sock'));
}

/** Where the daemon's socket is by default, without reading agentd.yaml: AGENTD_SOCKET, else $AGENTD_HOME/run/daemon.sock. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return resolveSocketPath({ env });
}
