/**
 * Disk used by a session workspace on the host: the blocks its files and directories take (sparse
 * files count what they really use), found by walking the tree without following symlinks. The walk
 * stops as soon as the total passes the limit, so a huge tree costs no more than the limit's worth.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

/** lstat calls in flight at once (they run on libuv's thread pool). */
const BATCH = 32;

export interface Usage {
  bytes: number;
  /** The walk stopped early because the total passed the limit. */
  over: boolean;
  /** Entries the daemon could not read (a directory the code made unreadable to it). */
  unreadable: number;
}

export async function workspaceUsage(dir: string, limitBytes: number): Promise<Usage> {
  let bytes = 0;
  let unreadable = 0;
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    let names: string[];
    try {
      names = await fs.readdir(d);
    } catch {
      unreadable++;
      continue;
    }
    for (let i = 0; i < names.length; i += BATCH) {
      const stats = await Promise.all(
        names.slice(i, i + BATCH).map((name) => {
          const p = path.join(d, name);
          return fs.lstat(p).then(
            (st) => ({ p, st }),
            () => null,
          ); // gone meanwhile
        }),
      );
      for (const s of stats) {
        if (!s) continue;
        bytes += s.st.blocks * 512;
        if (s.st.isDirectory()) stack.push(s.p);
      }
      if (bytes > limitBytes) return { bytes, over: true, unreadable };
    }
  }
  return { bytes, over: false, unreadable };
}
