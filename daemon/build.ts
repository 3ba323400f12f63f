/**
 * The fast start path: the daemon, client and plugins transpiled to plain ESM in `.build/` with
 * esbuild (no bundling, same layout), so a start pays neither the TypeScript loader's time nor its
 * memory. Rebuilt whenever a source is newer than the last build; tests and dev mode run the
 * sources directly.
 */
import fs from 'node:fs';
import path from 'node:path';

export const BUILD_DIR = '.build';
const SOURCE_DIRS = ['daemon', 'client', 'plugins'];

function sources(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && !e.name.startsWith('.')) walk(p);
      } else if (/\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const d of SOURCE_DIRS) walk(path.join(root, d));
  return out;
}

/** The stamp records the set of sources and their newest mtime, so edits, additions and deletions all invalidate it. */
function fingerprint(files: string[]): string {
  let newest = 0;
  for (const f of files) newest = Math.max(newest, fs.statSync(f).mtimeMs);
  return `${files.length}:${newest}:${files.sort().join('|').length}`;
}

export async function ensureBuilt(root: string, force = false): Promise<{ built: boolean; ms: number; entry: string }> {
  const t0 = Date.now();
  const outdir = path.join(root, BUILD_DIR);
  const entry = path.join(outdir, 'daemon', 'main.js');
  const files = sources(root);
  const fp = fingerprint(files);
  const stampFile = path.join(outdir, '.stamp');
  if (!force && fs.existsSync(entry) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === fp) {
    return { built: false, ms: Date.now() - t0, entry };
  }
  const { build } = await import('esbuild');
  fs.rmSync(outdir, { recursive: true, force: true });
  await build({
    entryPoints: files,
    outdir,
    outbase: root,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    jsx: 'automatic',
    logLevel: 'error',
  });
  fs.writeFileSync(stampFile, fp);
  return { built: true, ms: Date.now() - t0, entry };
}

/** Where the transpiled twin of a source file is, when this code runs from the build. */
export function compiledTwin(root: string, file: string): string | null {
  const rel = path.relative(root, file);
  if (rel.startsWith('..') || !/\.tsx?$/.test(rel)) return null;
  const twin = path.join(root, BUILD_DIR, rel.replace(/\.tsx?$/, '.js'));
  return fs.existsSync(twin) ? twin : null;
}
