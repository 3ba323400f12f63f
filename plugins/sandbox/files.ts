/**
 * Files handed to an exec: validated relative paths, packed into a tar that `tar -x` unpacks inside the
 * container as the sandbox user. Writing through the container (not from the host) means a symlink left
 * in a session workspace can never redirect a write onto the host.
 */
import path from 'node:path/posix';
import { DaemonError } from '../../daemon/plugin-api.js';

export interface InputFile {
  path: string;
  content: string;
  encoding?: 'utf8' | 'base64';
  executable?: boolean;
}

export interface TarEntry {
  name: string;
  data: Buffer;
  mode: number;
}

/** Normalise a workspace-relative path; throws INVALID_DATA for anything that leaves the workspace. */
export function workspacePath(p: string, index: number): string {
  const bad = (why: string) =>
    new DaemonError('INVALID_DATA', `files[${index}].path ${JSON.stringify(p)}: ${why}`, {
      issues: [{ path: ['files', index, 'path'], message: why }],
    });
  if (p.length === 0) throw bad('empty path');
  if (p.includes('\0')) throw bad('contains a NUL byte');
  if (p.startsWith('/')) throw bad('must be relative to the workspace');
  if (p.split('/').includes('..')) throw bad('escapes the workspace (..)');
  const norm = path.normalize(p);
  if (norm === '.' || norm.endsWith('/')) throw bad('names a directory, not a file');
  if (Buffer.byteLength(norm) > 255) throw bad('longer than 255 bytes');
  return norm;
}

export function decodeFiles(files: InputFile[]): TarEntry[] {
  const seen = new Set<string>();
  return files.map((f, i) => {
    const name = workspacePath(f.path, i);
    if (seen.has(name)) {
      throw new DaemonError('INVALID_DATA', `files[${i}].path ${JSON.stringify(f.path)} given twice`, {
        issues: [{ path: ['files', i, 'path'], message: 'duplicate path' }],
      });
    }
    seen.add(name);
    const data = f.encoding === 'base64' ? Buffer.from(f.content, 'base64') : Buffer.from(f.content, 'utf8');
    return { name, data, mode: f.executable ? 0o755 : 0o644 };
  });
}

/** A POSIX ustar archive (no dependency needed for regular files). */
export function tar(entries: TarEntry[], uid: number, gid: number): Buffer {
  const parts: Buffer[] = [];
  const mtime = Math.floor(Date.now() / 1000);
  for (const e of entries) {
    const h = Buffer.alloc(512);
    let name = e.name;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      // ustar splits long names at a '/' into prefix (≤155) and name (≤100).
      const cut = name.lastIndexOf('/', 155);
      if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) {
        throw new DaemonError('INVALID_DATA', `file path too long for the archive: ${name}`);
      }
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    h.write(name, 0, 100, 'utf8');
    octal(h, 100, 8, e.mode);
    octal(h, 108, 8, uid);
    octal(h, 116, 8, gid);
    octal(h, 124, 12, e.data.length);
    octal(h, 136, 12, mtime);
    h.fill(' ', 148, 156); // checksum is computed with its own field as spaces
    h.write('0', 156); // regular file
    h.write('ustar\0', 257);
    h.write('00', 263);
    h.write(prefix, 345, 155, 'utf8');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
    parts.push(h, e.data);
    const pad = (512 - (e.data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024)); // end-of-archive: two zero blocks
  return Buffer.concat(parts);
}

function octal(buf: Buffer, off: number, len: number, n: number): void {
  buf.write(n.toString(8).padStart(len - 1, '0') + '\0', off, len, 'ascii');
}
