/**
 * What `./daemon-control.ts` runs: the CLI prebuilt into one JavaScript bundle, as the daemon is, so a
 * command does not pay for the TypeScript loader (most of its time under tsx). The bundle lives in
 * `.cache/cli/` with the list of the sources it was built from and their modification times; when one
 * changed (or the installed packages did) it is rebuilt before the command runs. Plain JavaScript:
 * this file is what runs before anything is compiled.
 *
 * AGENTD_FROM_SOURCE=1 runs the CLI from its sources under tsx (as it runs the daemon from its sources).
 */
import fs from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = path.join(ROOT, 'daemon-control.ts');
// Not under .build/: the daemon's build replaces that folder whole, possibly while a command runs.
const CACHE = path.join(ROOT, '.cache', 'cli');
const CURRENT = path.join(CACHE, 'current.json');
/** Changes on every `npm install`: the bundle holds the packages it was built with. */
const PACKAGES = path.join(ROOT, 'node_modules', '.package-lock.json');
/** A superseded build is removed once no command can still be loading its chunks. */
const OLD_BUILD_MS = 10 * 60_000;

const mtime = (file) => fs.statSync(file).mtimeMs;

/** The bundle's entry when every input is as it was at build time; null otherwise. */
function freshEntry() {
  let current;
  try {
    current = JSON.parse(fs.readFileSync(CURRENT, 'utf8'));
    for (const [file, m] of Object.entries(current.inputs)) if (mtime(path.join(ROOT, file)) !== m) return null;
  } catch {
    return null;
  }
  return path.join(CACHE, current.dir, 'daemon-control.js');
}

/**
 * The entry keeps its own `import.meta.url` in the bundle, so the checkout's root it derives from it is
 * the same as when the source runs. (No other source the CLI bundles reads its own location.)
 */
const ownImportMeta = {
  name: 'own-import-meta',
  setup(b) {
    b.onLoad({ filter: /daemon-control\.ts$/ }, (args) => {
      if (args.path !== SOURCE) return undefined;
      const text = fs.readFileSync(args.path, 'utf8');
      return {
        contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
        loader: 'ts',
      };
    });
  },
};

async function build() {
  const { build: esbuild } = await import('esbuild');
  const dir = `b-${Date.now().toString(36)}-${process.pid}`;
  const out = path.join(CACHE, dir);
  const r = await esbuild({
    entryPoints: { 'daemon-control': SOURCE },
    outdir: out,
    absWorkingDir: ROOT,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    metafile: true,
    // The daemon's bundler (for `start`) stays a package: its native binary is found from its own directory.
    external: ['esbuild', 'tsx', 'tsx/*', 'better-sqlite3'],
    plugins: [ownImportMeta],
    // Bundled CommonJS packages call require() for Node's built-ins.
    banner: {
      js: "import { createRequire as __agentdCreateRequire } from 'node:module'; const require = __agentdCreateRequire(import.meta.url);",
    },
    logLevel: 'error',
  });
  const inputs = {};
  for (const i of [
    ...Object.keys(r.metafile.inputs).filter((f) => !f.includes('node_modules/') && !f.includes(':')),
    'bin/daemon-control.mjs',
  ]) {
    inputs[i] = mtime(path.join(ROOT, i));
  }
  if (fs.existsSync(PACKAGES)) inputs[path.relative(ROOT, PACKAGES)] = mtime(PACKAGES);
  // Written beside, then renamed: a command starting meanwhile sees the old build or the new one, whole.
  const tmp = `${CURRENT}.${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify({ dir, inputs }));
  fs.renameSync(tmp, CURRENT);
  for (const e of fs.readdirSync(CACHE, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === dir) continue;
    const p = path.join(CACHE, e.name);
    try {
      if (Date.now() - mtime(p) > OLD_BUILD_MS) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      /* another command removed it */
    }
  }
  return path.join(out, 'daemon-control.js');
}

async function fromSource() {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(SOURCE).href);
}

// Node 22 and later keep the compiled code of the modules a command loads, for the next command.
module.enableCompileCache?.(path.join(CACHE, 'v8'));

if (process.env.AGENTD_FROM_SOURCE === '1') {
  await fromSource();
} else {
  let entry = freshEntry();
  if (entry === null) {
    try {
      entry = await build();
    } catch {
      // Cannot build here (a read-only checkout, a source esbuild rejects): the sources still run,
      // and show their own error if they have one.
      entry = null;
    }
  }
  if (entry === null) await fromSource();
  else await import(pathToFileURL(entry).href);
}
