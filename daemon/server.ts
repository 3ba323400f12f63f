/**
 * The Unix socket: created 0600 inside a 0700 directory; a stale socket file (nobody answers) is
 * removed, a live one means another daemon owns it and we refuse to start.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export class AlreadyRunningError extends Error {}

function probe(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socketPath);
    const done = (alive: boolean): void => {
      s.destroy();
      resolve(alive);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    setTimeout(() => done(false), 1000).unref();
  });
}

/** Something other than a socket is where the socket goes: the message says what, and what to do. */
export class SocketPathError extends Error {}

/**
 * Make the socket's directory private and clear a stale socket; throws when a daemon answers there,
 * or when the path holds anything but a socket (a symbolic link, dangling or not, is never followed).
 */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) {
    let target = '?';
    try {
      target = fs.readlinkSync(socketPath);
    } catch {
      /* still a link */
    }
    const dangling = !fs.existsSync(socketPath);
    throw new SocketPathError(
      `the socket path ${socketPath} is a symbolic link${dangling ? ' that points nowhere' : ''} (to ${target}); agentd does not follow it: remove it (rm ${socketPath}) or choose another socket path`,
    );
  }
  if (!st.isSocket())
    throw new SocketPathError(
      `the socket path ${socketPath} is taken by a ${st.isDirectory() ? 'directory' : 'file'}, not a socket: move it aside or choose another socket path`,
    );
  if (await probe(socketPath)) throw new AlreadyRunningError(`another daemon is already listening on ${socketPath}`);
  fs.unlinkSync(socketPath);
}

/**
 * Listen with a backlog that holds a burst of connections well past `daemon.max_connections` (the
 * kernel caps it at net.core.somaxconn): a client past the limit should be accepted and told
 * OVERLOADED, not refused by the kernel with EAGAIN before the daemon ever sees it.
 */
export function listen(server: net.Server, socketPath: string, backlog = 4096): Promise<void> {
  return new Promise((resolve, reject) => {
    // The umask closes the window between bind and chmod in which the socket would be world-accessible.
    const old = process.umask(0o177);
    server.once('error', (e) => {
      process.umask(old);
      reject(e);
    });
    server.listen({ path: socketPath, backlog }, () => {
      process.umask(old);
      fs.chmodSync(socketPath, 0o600);
      resolve();
    });
  });
}
