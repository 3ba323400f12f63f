/**
 * The fast start path: the daemon and its plugins bundled with esbuild into `.build/` — one entry for
 * the daemon, one per plugin, shared code (zod, the kernel's plugin API, the client's error table) in
 * common chunks, and each heavy dependency that a plugin imports on demand (the Anthropic SDK,
 * neo4j-driver, dockerode, NATS) in a chunk of its own that only loads when used. Resolving and
 * evaluating a few dozen chunks instead of ~2,000 module files is most of the start time saved.
 * Rebuilt whenever a source is newer than the last build; tests and dev mode run the sources directly.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Plugin } from 'esbuild';

export const BUILD_DIR = '.build';
const SOURCE_DIRS = ['daemon', 'client', 'plugins'];

/**
 * Left to Node's own loader: the native SQLite binding (found through its package directory), the
 * TypeScript loader (hot reload, extra plugin dirs) and the pretty printer (foreground only).
 */
const EXTERNAL = ['better-sqlite3', 'tsx', 'tsx/*', 'esbuild', 'pino-pretty'];

/** Files under `dirs` (below root) whose name passes `keep`, skipping node_modules and dot-folders. */
function filesUnder(root: string, dirs: string[], keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && !e.name.startsWith('.')) walk(p);
      } else if (keep(e.name)) out.push(p);
    }
  };
  for (const d of dirs) walk(path.join(root, d));
  return out;
}

function sources(root: string): string[] {
  return filesUnder(root, SOURCE_DIRS, (n) => /\.tsx?$/.test(n) && !n.endsWith('.d.ts'));
}

/**
 * The YAML files shipped with agentd (the price table, the agent profiles), parsed now, keyed by their
 * text: see daemon/yaml-text.ts. They count as sources, so editing one rebuilds.
 */
function shippedYaml(root: string): string[] {
  return filesUnder(root, ['plugins', 'profiles'], (n) => /\.ya?ml$/.test(n));
}

async function preparsedYaml(files: string[]): Promise<Record<string, unknown>> {
  // The default export: bundled, yaml is CommonJS without named exports.
  const { parse } = (await import('yaml')).default;
  const out: Record<string, unknown> = {};
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    try {
      out[text] = parse(text);
    } catch {
      // Not valid YAML: left to the runtime parse, which reports it where the file is used.
    }
  }
  return out;
}

/** The daemon's entry and every plugin's `index.ts`: what the kernel imports by path. */
function entries(root: string): string[] {
  const out = [path.join(root, 'daemon', 'main.ts')];
  const pluginsDir = path.join(root, 'plugins');
  for (const e of fs.existsSync(pluginsDir) ? fs.readdirSync(pluginsDir, { withFileTypes: true }) : []) {
    const index = path.join(pluginsDir, e.name, 'index.ts');
    if (e.isDirectory() && fs.existsSync(index)) out.push(index);
  }
  return out;
}

/** The stamp records the set of sources and their newest mtime, so edits, additions and deletions all invalidate it. */
function fingerprint(files: string[]): string {
  let newest = 0;
  for (const f of files) newest = Math.max(newest, fs.statSync(f).mtimeMs);
  return `v4:${files.length}:${newest}:${files.sort().join('|').length}`;
}

/**
 * dockerode requires its BuildKit session (gRPC, protobufjs) and docker-modem its SSH transport
 * (ssh2) at load time, although agentd builds no images through dockerode and talks to a local
 * socket. Those modules become stubs that require the real, unbundled module on first use: both
 * still work (with their .proto files beside them), and a start does not pay ~10 MB for them.
 */
const LAZY_VENDOR: Array<{ importer: RegExp; request: string; real: string; shape: 'function' | 'object' }> = [
  {
    importer: /dockerode[\\/]lib[\\/]docker\.js$/,
    request: './session',
    real: 'dockerode/lib/session.js',
    shape: 'function',
  },
  {
    importer: /dockerode[\\/]lib[\\/]docker\.js$/,
    request: './buildkit',
    real: 'dockerode/lib/buildkit.js',
    shape: 'object',
  },
  {
    importer: /docker-modem[\\/]lib[\\/]modem\.js$/,
    request: './ssh',
    real: 'docker-modem/lib/ssh.js',
    shape: 'function',
  },
];

const lazyVendor: Plugin = {
  name: 'lazy-vendor',
  setup(b) {
    b.onResolve({ filter: /^\.\/(session|buildkit|ssh)$/ }, (args) => {
      const hit = LAZY_VENDOR.find((l) => l.request === args.path && l.importer.test(args.importer));
      return hit ? { path: hit.real, namespace: 'lazy-vendor' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-vendor' }, (args) => {
      const hit = LAZY_VENDOR.find((l) => l.real === args.path)!;
      const real = `require(${JSON.stringify(hit.real)})`;
      const contents =
        hit.shape === 'function'
          ? `module.exports = function () { return ${real}.apply(this, arguments); };`
          : `module.exports = new Proxy({}, { get: (_, k) => ${real}[k] });`;
      return { contents, loader: 'js', resolveDir: args.path };
    });
    // The stubs' own require of the real module stays a runtime require.
    b.onResolve({ filter: /^(dockerode\/lib\/(session|buildkit)|docker-modem\/lib\/ssh)\.js$/ }, (args) => ({
      path: args.path,
      external: true,
    }));
  },
};

/**
 * zod ships its error messages in ~40 languages (~360 KB, half of zod's bundled size, all compiled at
 * every start); agentd's errors are English, so only `en` stays. Should zod move the file, this stops
 * matching and the bundle is merely larger.
 */
const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer)) return undefined;
      return { path: path.join(path.dirname(args.importer), '..', 'locales', 'index.js'), namespace: 'zod-en' };
    });
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      loader: 'js',
      resolveDir: path.dirname(args.path),
    }));
  },
};

export async function ensureBuilt(root: string, force = false): Promise<{ built: boolean; ms: number; entry: string }> {
  const t0 = Date.now();
  const outdir = path.join(root, BUILD_DIR);
  const entry = path.join(outdir, 'daemon', 'main.js');
  const yamlFiles = shippedYaml(root);
  const files = [...sources(root), ...yamlFiles];
  const fp = fingerprint(files);
  const stampFile = path.join(outdir, '.stamp');
  if (!force && fs.existsSync(entry) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === fp) {
    return { built: false, ms: Date.now() - t0, entry };
  }
  const { build } = await import('esbuild');
  // Build beside, then swap: a daemon starting meanwhile never sees a half-written tree.
  const tmp = `${outdir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  await build({
    entryPoints: entries(root),
    outdir: tmp,
    outbase: root,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Linked, not inline: the bundle stays small to read, and the map is read only for a stack trace.
    sourcemap: 'linked',
    jsx: 'automatic',
    external: EXTERNAL,
    define: { __AGENTD_PREPARSED_YAML__: JSON.stringify(await preparsedYaml(yamlFiles)) },
    plugins: [lazyVendor, zodEnglishOnly],
    // Bundled CommonJS packages call require() for Node's built-ins and for the externals above.
    banner: {
      js: "import { createRequire as __agentdCreateRequire } from 'node:module'; const require = __agentdCreateRequire(import.meta.url);",
    },
    logLevel: 'error',
  });
  fs.writeFileSync(path.join(tmp, '.stamp'), fp);
  fs.rmSync(outdir, { recursive: true, force: true });
  fs.renameSync(tmp, outdir);
  return { built: true, ms: Date.now() - t0, entry };
}

/** Where the bundled twin of a plugin's entry file is, when this code runs from the build. */
export function compiledTwin(root: string, file: string): string | null {
  const rel = path.relative(root, file);
  if (rel.startsWith('..') || !/\.tsx?$/.test(rel)) return null;
  const twin = path.join(root, BUILD_DIR, rel.replace(/\.tsx?$/, '.js'));
  return fs.existsSync(twin) ? twin : null;
}

/**
 * Node's arguments for running the built daemon. Source maps are opt-in (AGENTD_SOURCE_MAPS=1):
 * reading them at load costs ~60 ms and ~10 MB, and the bundle is not minified, so a stack trace
 * names the bundled function and the file region comments (`// plugins/x/y.ts`) say where it came from.
 */
export function builtDaemonArgs(entry: string, env: NodeJS.ProcessEnv = process.env): string[] {
  return [...(env.AGENTD_SOURCE_MAPS === '1' ? ['--enable-source-maps'] : []), entry];
}
