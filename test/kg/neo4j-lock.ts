/**
 * Community Neo4j has one user database, and the conformance suite, the daemon tests and the
 * benchmark all clear it. Test files run in parallel, so whoever uses the shared test Neo4j holds
 * this lock: a directory created atomically, with the holder's pid so a crashed holder's lock is
 * taken over instead of waited on forever.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const LOCK = path.join(os.tmpdir(), 'agentd-neo4j-test.lock');

function holderAlive(): boolean {
  try {
    const pid = Number(fs.readFileSync(path.join(LOCK, 'pid'), 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but is not ours; no pid file yet: the holder may still be writing it.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPERM') return true;
    if (code !== 'ENOENT') return false;
    try {
      return Date.now() - fs.statSync(LOCK).mtimeMs < 5_000;
    } catch {
      return false;
    }
  }
}

/** Wait (bounded) for the lock; resolves to its release function. */
export async function lockNeo4j(timeoutMs = 300_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      fs.writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      return () => fs.rmSync(LOCK, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (!holderAlive()) {
      // Give a holder that just created the directory a moment to write its pid before judging it dead.
      await new Promise((r) => setTimeout(r, 200));
      if (!holderAlive()) fs.rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
