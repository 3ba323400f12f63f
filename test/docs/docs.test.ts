/**
 * The documentation runs: every block marked runnable in README.md and docs/*.md is run as a reader
 * would type it (a page's blocks in order, in one environment, against a fresh AGENTD_HOME), the
 * TypeScript blocks and examples/ are typechecked, every script in examples/ runs and exits 0 on its
 * own, and every relative link resolves. The model is the tests' Messages API server with a
 * deterministic stand-in (./stand-in-model.ts). How to mark a block: docs/writing-docs.md.
 *
 * DOCS_ONLY=<file name> runs one page (README.md, kg.md, examples, …).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { IN_CI, ROOT } from '../helpers/daemon-process.js';
import { dockerReason } from '../sandbox/docker-env.js';
import { brokenLinks, consoleSteps, docPages, outputMatches, runnableBlocks, type Block } from './blocks.js';
import { standInModel } from './stand-in-model.js';

const TSX = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');
// Inside the checkout, so a block's `import … from 'agentd/client'` resolves as it does for a reader.
const WORK = path.join(ROOT, '.cache', 'doc-blocks', `run-${process.pid}`);
const ONLY = process.env.DOCS_ONLY;
const rel = (f: string): string => path.relative(ROOT, f);

let api: MessagesApiServer;

beforeAll(async () => {
  fs.mkdirSync(WORK, { recursive: true });
  api = await startMessagesApiServer({ autoCloseMs: 60 * 60_000 });
  api.setHandler(standInModel);
});

afterAll(async () => {
  await api?.close();
  fs.rmSync(WORK, { recursive: true, force: true });
});

/** Why a block's service is missing here, or null when every one it needs is there. */
function missing(needs: string[]): string | null {
  for (const n of needs) {
    if (n === 'docker' && dockerReason) return dockerReason;
    if (n === 'nats' && spawnSync('sh', ['-c', 'command -v nats-server']).status !== 0)
      return 'nats-server is not installed';
    if (n === 'neo4j' && !process.env.NEO4J_TEST_URI && !IN_CI) return 'no test Neo4j (NEO4J_TEST_URI)';
    if (!['docker', 'nats', 'neo4j'].includes(n)) return `unknown need "${n}"`;
  }
  return null;
}

/**
 * One reader's shell for a page: a fresh AGENTD_HOME, the model API at the local server, no key,
 * and whatever the page's blocks export carried from one block to the next.
 */
class PageShell {
  readonly home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-docs-'));
  private readonly state = path.join(this.home, '.docs-shell-state');
  private readonly env: NodeJS.ProcessEnv;

  constructor(extra: Record<string, string> = {}) {
    const env: NodeJS.ProcessEnv = {};
    // Nothing of the developer's own setup leaks in: no real key, no other daemon.
    for (const [k, v] of Object.entries(process.env))
      if (!/^(ANTHROPIC_|AGENTD_|NODE_OPTIONS$|VITEST)/.test(k)) env[k] = v;
    this.env = { ...env, AGENTD_HOME: this.home, ANTHROPIC_BASE_URL: api.url, NO_COLOR: '1', ...extra };
  }

  /** Run bash code in the page's environment from the repository root; output is stdout and stderr in order. */
  run(code: string, timeoutS: number, strict = false): Promise<{ code: number | null; output: string }> {
    const script = [
      SAVE_STATE,
      `[ -f ${q(this.state)} ] && . ${q(this.state)}`,
      `trap '__docs_save > ${q(this.state)}' EXIT`,
      'exec 2>&1',
      `cd ${q(ROOT)}`,
      strict ? 'set -euo pipefail' : '',
      code,
    ].join('\n');
    return new Promise((resolve) => {
      const child = spawn('bash', ['-c', script], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const timer = setTimeout(() => {
        output += `\n[docs runner: killed after ${timeoutS} s]`;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, timeoutS * 1000);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, output });
      });
    });
  }

  async ensureDaemon(): Promise<void> {
    const r = await this.run('./daemon-control.ts status >/dev/null || ./daemon-control.ts start', 120);
    if (r.code !== 0) throw new Error(`could not start a daemon for the page:\n${r.output}`);
  }

  async close(): Promise<void> {
    await this.run('./daemon-control.ts status >/dev/null 2>&1 && ./daemon-control.ts stop >/dev/null 2>&1; true', 90);
    fs.rmSync(this.home, { recursive: true, force: true });
  }
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Saves every shell variable a reader's shell would keep from one command to the next (exported or
 * not: `URL=$(…)` then `curl "$URL"`), except bash's own and read-only ones.
 */
const SAVE_STATE = [
  '__docs_save() {',
  '  local __v __d __f',
  '  for __v in $(compgen -v); do',
  '    case "$__v" in',
  '      BASH*|FUNCNAME|PIPESTATUS|RANDOM|SRANDOM|SECONDS|LINENO|OLDPWD|PWD|_|SHLVL|HIST*|COMP_*|DIRSTACK|GROUPS|PPID|UID|EUID|SHELLOPTS|EPOCH*|IFS|OPTIND|OPTERR|MACHTYPE|HOSTTYPE|OSTYPE|HOSTNAME|PS1|PS2|PS4|__*) continue ;;',
  '    esac',
  '    __d=$(declare -p "$__v" 2>/dev/null) || continue',
  '    __f=${__d#declare -}; __f=${__f%% *}',
  '    [[ $__f == *r* ]] && continue',
  '    printf \'%s\\n\' "$__d"',
  '  done',
  '}',
].join('\n');

function tsFileOf(b: Block): string {
  return path.join(WORK, `${rel(b.file).replace(/[/.]/g, '_')}-${b.line}.ts`);
}

async function runBlock(shell: PageShell, b: Block): Promise<void> {
  const where = `${rel(b.file)}:${b.line}`;
  if (b.daemon) await shell.ensureDaemon();
  if (b.lang === 'sh' || b.lang === 'bash') {
    const r = await shell.run(b.code, b.timeoutS, true);
    expect(r.code, `${where}: the block exited ${r.code}:\n${r.output}`).toBe(0);
  } else if (b.lang === 'console') {
    for (const step of consoleSteps(b.code)) {
      const r = await shell.run(step.command, b.timeoutS);
      const shown = `${where}: $ ${step.command}\n--- expected (exit ${step.exit})\n${step.expected.join('\n')}\n--- got (exit ${r.code})\n${r.output}`;
      expect(r.code, shown).toBe(step.exit);
      expect(outputMatches(step.expected, r.output), shown).toBe(true);
    }
  } else if (b.lang === 'ts' || b.lang === 'typescript') {
    const file = tsFileOf(b);
    fs.writeFileSync(file, b.code + '\n');
    const r = await shell.run(`node --import ${q(TSX)} --no-warnings ${q(file)}`, b.timeoutS);
    expect(
      r.code,
      `${where}: the script exited ${r.code} (a script must end on its own: close its client):\n${r.output}`,
    ).toBe(0);
  } else {
    throw new Error(`${where}: runnable blocks are sh, console or ts, not "${b.lang}"`);
  }
}

const pages = docPages(ROOT).filter((p) => !ONLY || path.basename(p) === ONLY);
const examples = fs
  .readdirSync(path.join(ROOT, 'examples'))
  .filter((f) => f.endsWith('.ts'))
  .sort();

describe('documentation', () => {
  it('links only to files and headings that exist', () => {
    expect(docPages(ROOT).flatMap((p) => brokenLinks(p).map((l) => `${rel(p)}: ${l}`))).toEqual([]);
  });

  it('has TypeScript blocks and examples that typecheck', async () => {
    const blocks = docPages(ROOT)
      .flatMap(runnableBlocks)
      .filter((b) => b.lang === 'ts' || b.lang === 'typescript');
    for (const b of blocks) fs.writeFileSync(tsFileOf(b), b.code + '\n');
    const files = [...blocks.map(tsFileOf), ...examples.map((e) => path.join(ROOT, 'examples', e))];
    fs.writeFileSync(
      path.join(WORK, 'tsconfig.json'),
      JSON.stringify({ extends: path.join(ROOT, 'tsconfig.json'), include: [], files }),
    );
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn(process.execPath, [
        path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        path.join(WORK, 'tsconfig.json'),
        '--noEmit',
        '--pretty',
        'false',
      ]);
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', (code) => resolve({ code, out }));
    });
    // Name each error by the page and line of its block, not the temporary file.
    let report = r.out;
    for (const b of blocks) report = report.split(tsFileOf(b)).join(`${rel(b.file)} (block at line ${b.line})`);
    expect(r.code, report).toBe(0);
  }, 180_000);
});

for (const page of pages) {
  const blocks = runnableBlocks(page);
  if (blocks.length === 0) continue;
  describe(rel(page), () => {
    let shell: PageShell;
    beforeAll(() => void (shell = new PageShell()));
    afterAll(async () => shell?.close(), 120_000);
    for (const b of blocks) {
      const reason = missing(b.needs);
      const name = `${b.lang} block at line ${b.line}${b.needs.length ? ` (needs ${b.needs.join(', ')})` : ''}`;
      if (reason && !IN_CI) {
        it.skip(`${name}: ${reason}`, () => undefined);
        continue;
      }
      it(
        name,
        async () => {
          if (reason)
            throw new Error(
              `${rel(page)}:${b.line} needs ${b.needs.join(', ')} (CI=true: a missing service is a failure): ${reason}`,
            );
          await runBlock(shell, b);
        },
        (b.timeoutS + 120) * 1000,
      );
    }
  });
}

if (!ONLY || ONLY === 'examples') {
  describe('examples/', () => {
    let shell: PageShell;
    beforeAll(async () => {
      shell = new PageShell({ ANTHROPIC_API_KEY: 'sk-ant-examples' });
      await shell.ensureDaemon();
    }, 180_000);
    afterAll(async () => shell?.close(), 120_000);
    for (const e of examples) {
      it(`${e} exits 0 on its own`, async () => {
        const r = await shell.run(`node --import ${q(TSX)} --no-warnings examples/${e}`, 120);
        expect(r.code, `examples/${e} exited ${r.code}:\n${r.output}`).toBe(0);
      }, 240_000);
    }
  });
}
