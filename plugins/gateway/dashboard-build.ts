/**
 * The web dashboard's bundle: `interfaces/dashboard/` (and the TUI state modules it shares) built by
 * the repository's esbuild into memory, cached under `.cache/dashboard-bundle/` with the list of its inputs
 * and their modification times, so a start with unchanged sources reads the cache instead.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface Asset {
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.map': 'application/json',
};

type Stamp = Record<string, number>;

function stampOf(root: string, inputs: string[]): Stamp {
  const out: Stamp = {};
  for (const i of inputs) out[i] = fs.statSync(path.join(root, i)).mtimeMs;
  return out;
}

function fresh(root: string, stamp: Stamp): boolean {
  try {
    return Object.entries(stamp).every(([f, m]) => fs.statSync(path.join(root, f)).mtimeMs === m);
  } catch {
    return false;
  }
}

function readDir(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    out.set(`/${name}`, {
      body: fs.readFileSync(path.join(dir, name)),
      type: TYPES[path.extname(name)] ?? 'application/octet-stream',
    });
  }
  return out;
}

/** The dashboard's files by URL path (`/index.html`, `/app.js`, `/app.css`). */
export async function dashboardAssets(root: string): Promise<Map<string, Asset>> {
  const src = path.join(root, 'interfaces', 'dashboard');
  // Not under .build/: the daemon's build replaces that folder whole, and may do so while a gateway starts.
  const cache = path.join(root, '.cache', 'dashboard-bundle');
  try {
    const stamp = JSON.parse(fs.readFileSync(path.join(cache, '.stamp'), 'utf8')) as Stamp;
    if (fresh(root, stamp)) return readDir(cache);
  } catch {
    /* no cache yet */
  }
  const { build } = await import('esbuild');
  const r = await build({
    entryPoints: { app: path.join(src, 'main.tsx') },
    bundle: true,
    write: false,
    outdir: cache,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    jsx: 'automatic',
    metafile: true,
    absWorkingDir: root,
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'error',
  });
  const assets = new Map<string, Asset>();
  for (const f of r.outputFiles)
    assets.set(`/${path.basename(f.path)}`, {
      body: Buffer.from(f.contents),
      type: TYPES[path.extname(f.path)] ?? 'application/octet-stream',
    });
  const html = path.join(src, 'index.html');
  assets.set('/index.html', { body: fs.readFileSync(html), type: TYPES['.html'] });
  const inputs = [...Object.keys(r.metafile.inputs).filter((i) => !i.includes(':')), path.relative(root, html)];
  // Best effort: a daemon that cannot write the cache still serves the bundle it built.
  try {
    const tmp = `${cache}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    for (const [p, a] of assets) fs.writeFileSync(path.join(tmp, p.slice(1)), a.body);
    fs.writeFileSync(
      path.join(tmp, '.stamp'),
      JSON.stringify(
        stampOf(
          root,
          inputs.map((i) => path.relative(root, path.resolve(root, i))),
        ),
      ),
    );
    fs.rmSync(cache, { recursive: true, force: true });
    fs.renameSync(tmp, cache);
  } catch {
    /* another daemon wrote it meanwhile, or the checkout is read-only */
  }
  return assets;
}
