/**
 * The export file: JSON Lines, so a graph of any size streams out page by page and back in line by
 * line. The first line is a header; then one `{"node": …}` per line, then one `{"edge": …}` per line.
 * Written to a fresh temporary file (created exclusively, so nothing planted under its name is
 * followed) and moved into place only when complete. An existing file is replaced only when the
 * caller says `overwrite`, and never through a symbolic link: the daemon may write where its caller
 * may not, so it must not be turned into a tool for clobbering files.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { DaemonError } from '../../client/errors.js';
import { edgeInputSchema, nodeInputSchema, type EdgeInput, type NodeInput } from './model.js';
import type { GraphStore } from './store.js';

export const FILE_FORMAT = 'agentd-kg';
export const FILE_VERSION = 1;
const MAX_ISSUES = 50;

function checkPath(p: string, field: string): string {
  if (!path.isAbsolute(p)) {
    throw new DaemonError('INVALID_DATA', `${field} must be an absolute path on the daemon host`, {
      issues: [{ path: [field], message: 'not absolute' }],
    });
  }
  return path.normalize(p);
}

/** What is at `target` now, refusing anything export must not write over. */
function checkTarget(target: string, overwrite: boolean): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(target);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) {
    throw new DaemonError(
      'CONFLICT',
      `${target} is a symbolic link; kg:export does not write through links: give the real path`,
      { path: target },
    );
  }
  if (!st.isFile()) throw new DaemonError('CONFLICT', `${target} exists and is not a regular file`, { path: target });
  if (!overwrite)
    throw new DaemonError('CONFLICT', `${target} already exists; pass overwrite: true to replace it`, { path: target });
}

export async function exportToFile(
  store: GraphStore,
  file: string,
  opts: { overwrite?: boolean; pageSize?: number } = {},
): Promise<{ path: string; nodes: number; edges: number; bytes: number }> {
  const target = checkPath(file, 'path');
  const overwrite = opts.overwrite ?? false;
  const pageSize = opts.pageSize ?? 5_000;
  if (!fs.existsSync(path.dirname(target)))
    throw new DaemonError('NOT_FOUND', `directory does not exist: ${path.dirname(target)}`, { path: target });
  checkTarget(target, overwrite);
  const tmp = `${target}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  // 'wx': O_CREAT|O_EXCL, which fails on anything already there, a symbolic link included.
  const out = fs.createWriteStream(tmp, { encoding: 'utf8', mode: 0o600, flags: 'wx' });
  const write = (line: string): Promise<void> =>
    out.write(line) ? Promise.resolve() : new Promise((r) => out.once('drain', r));
  let nodes = 0;
  let edges = 0;
  try {
    await write(
      `${JSON.stringify({ format: FILE_FORMAT, version: FILE_VERSION, backend: store.backend, exported_at: new Date().toISOString() })}\n`,
    );
    for await (const page of store.exportPages(pageSize)) {
      let chunk = '';
      for (const n of page.nodes ?? []) chunk += `${JSON.stringify({ node: n })}\n`;
      for (const e of page.edges ?? []) chunk += `${JSON.stringify({ edge: e })}\n`;
      nodes += page.nodes?.length ?? 0;
      edges += page.edges?.length ?? 0;
      await write(chunk);
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    // Checked again: the target may have appeared (or become a link) while the export was written.
    checkTarget(target, overwrite);
    if (overwrite) {
      fs.renameSync(tmp, target);
    } else {
      // A hard link fails if anything is at the target by now: no window in which a file is replaced.
      try {
        fs.linkSync(tmp, target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST')
          throw new DaemonError('CONFLICT', `${target} already exists; pass overwrite: true to replace it`, {
            path: target,
          });
        throw e;
      }
      fs.rmSync(tmp, { force: true });
    }
  } catch (e) {
    out.destroy();
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return { path: target, nodes, edges, bytes: fs.statSync(target).size };
}

/** Read and validate a whole export file; any bad line fails the import before anything is written. */
export async function readGraphFile(file: string): Promise<{ nodes: NodeInput[]; edges: EdgeInput[] }> {
  const source = checkPath(file, 'path');
  let stream: fs.ReadStream;
  try {
    await fs.promises.access(source, fs.constants.R_OK);
    stream = fs.createReadStream(source, { encoding: 'utf8' });
  } catch {
    throw new DaemonError('NOT_FOUND', `cannot read ${source}`, { path: source });
  }
  const nodes: NodeInput[] = [];
  const edges: EdgeInput[] = [];
  const issues: Array<{ path: (string | number)[]; message: string }> = [];
  let line = 0;
  for await (const text of readline.createInterface({ input: stream, crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      issues.push({ path: ['line', line], message: 'not JSON' });
      if (issues.length >= MAX_ISSUES) break;
      continue;
    }
    const obj = v as Record<string, unknown>;
    if (line === 1) {
      if (obj.format !== FILE_FORMAT || obj.version !== FILE_VERSION)
        issues.push({ path: ['line', 1], message: `not an ${FILE_FORMAT} v${FILE_VERSION} export header` });
      continue;
    }
    const isNode = obj && typeof obj === 'object' && 'node' in obj;
    const parsed = isNode ? nodeInputSchema.safeParse(obj.node) : edgeInputSchema.safeParse(obj?.edge);
    if (parsed.success) {
      if (isNode) nodes.push(parsed.data as NodeInput);
      else edges.push(parsed.data as EdgeInput);
    } else {
      for (const i of parsed.error.issues.slice(0, 5))
        issues.push({
          path: ['line', line, isNode ? 'node' : 'edge', ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
          message: i.message,
        });
    }
    if (issues.length >= MAX_ISSUES) break;
  }
  stream.destroy();
  if (issues.length > 0)
    throw new DaemonError('INVALID_DATA', `${source} is not a valid graph export; nothing was imported`, { issues });
  return { nodes, edges };
}
