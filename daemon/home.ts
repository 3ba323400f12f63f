/**
 * The home directory (AGENTD_HOME) and the run, db and logs directories in it hold the socket, the
 * databases and the logs: whoever can write to them can read the graph from a WAL file or move the
 * socket away. So before anything is opened, each one must be a real directory (not a symbolic link),
 * owned by the user the daemon runs as, and writable by nobody else; otherwise the daemon refuses to
 * start and says which one and why. What it creates it makes private (directories 0700, files 0600),
 * and what a looser earlier version left readable by others is tightened.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from './config.js';

/** The home is not safe to use: the message says which directory, why, and what to do. */
export class UnsafeHomeError extends Error {}

/** Files the daemon keeps in its home, tightened to 0600 when an earlier version left them readable. */
const PRIVATE_FILES = [
  ['db', 'agentd.db'],
  ['db', 'agentd.db-wal'],
  ['db', 'agentd.db-shm'],
  ['db', 'kg.db'],
  ['db', 'kg.db-wal'],
  ['db', 'kg.db-shm'],
  ['logs', 'daemon', 'daemon.log'],
  ['logs', 'daemon', 'stdout.log'],
  ['run', 'daemon.pid'],
];

/** Check (or create) every directory the daemon keeps state in; throws UnsafeHomeError. */
export function secureHome(paths: Paths, uid: number | undefined = process.getuid?.()): void {
  const dirs = [
    paths.home,
    paths.run,
    paths.db,
    paths.logs,
    path.join(paths.logs, 'daemon'),
    path.dirname(paths.socket),
  ];
  for (const dir of new Set(dirs)) privateDir(dir, uid);
  for (const parts of PRIVATE_FILES) {
    const file = path.join(paths.home, ...parts);
    try {
      const st = fs.lstatSync(file);
      if (st.isFile() && (st.mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    } catch {
      /* not there (yet) */
    }
  }
}

function privateDir(dir: string, uid: number | undefined): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    st = fs.lstatSync(dir);
  }
  if (st.isSymbolicLink()) {
    let target = '?';
    try {
      target = fs.readlinkSync(dir);
    } catch {
      /* unreadable link: still a link */
    }
    throw new UnsafeHomeError(
      `${dir} is a symbolic link (to ${target}); agentd keeps its socket, databases and logs only in a real directory it owns: replace the link with a directory, or set AGENTD_HOME to another place`,
    );
  }
  if (!st.isDirectory())
    throw new UnsafeHomeError(
      `${dir} exists and is not a directory; move it aside, or set AGENTD_HOME to another place`,
    );
  if (uid !== undefined && st.uid !== uid) {
    throw new UnsafeHomeError(
      `${dir} belongs to another user (uid ${st.uid}, agentd runs as uid ${uid}), who could read the databases or replace the socket: use a home of your own (AGENTD_HOME)`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    const who = (st.mode & 0o002) !== 0 ? 'every local user' : 'its group';
    throw new UnsafeHomeError(
      `${dir} is writable by ${who} (mode ${(st.mode & 0o777).toString(8)}), who could read the databases or replace the socket: chmod 700 ${dir}`,
    );
  }
  // Readable by others is not unsafe to start in, but nobody else needs to read it.
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}
