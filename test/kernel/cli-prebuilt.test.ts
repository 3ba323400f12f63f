/**
 * The prebuilt CLI: `./daemon-control.ts` runs a bundle of its sources (bin/daemon-control.mjs), and
 * says exactly what the sources say under the TypeScript loader (output, errors, exit codes); an
 * edited source is in the bundle the next command runs.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempHome } from '../helpers/daemon-process.js';
import { kernelConfig } from './kit.js';

const TSX = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');
const home = tempHome('agentd-prebuilt-');
fs.writeFileSync(path.join(home, 'agentd.yaml'), kernelConfig());
const env: Record<string, string | undefined> = {
  ...process.env,
  AGENTD_HOME: home,
  AGENTD_CONFIG: path.join(home, 'agentd.yaml'),
};
delete env.AGENTD_SOCKET;
delete env.AGENTD_FROM_SOURCE;

type Run = { code: number | null; out: string; err: string };

function run(cmd: string, args: string[], root = ROOT): Run {
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', timeout: 90_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const prebuilt = (...args: string[]): Run => run(path.join(ROOT, 'daemon-control.ts'), args);
const fromSources = (...args: string[]): Run =>
  run(process.execPath, ['--import', TSX, '--no-warnings', path.join(ROOT, 'daemon-control.ts'), ...args]);

/** What varies between two runs of one command: uptimes, and the event rate. */
const steady = (s: string): string =>
  s.replace(/uptime:? \d+(\.\d+)?s/g, 'uptime Ns').replace(/events\/s: [\d.]+/g, 'events/s: N');

afterAll(() => {
  prebuilt('stop');
  fs.rmSync(home, { recursive: true, force: true });
});

describe('the prebuilt CLI', () => {
  it('answers as its sources do: output, errors and exit codes', () => {
    const cases: string[][] = [
      [],
      ['help'],
      ['frobnicate'],
      ['health', '--jsno'],
      ['emit', 'system:ping', '{"a": 1,}'],
      ['emit', 'system:ping', '[1]'],
      ['stop', '--timeout', 'soon'],
      ['status'],
      ['health'],
      ['health', '--json'],
      ['emit', 'system:ping'],
    ];
    const compare = (args: string[]): void => {
      const a = prebuilt(...args);
      const b = fromSources(...args);
      expect({ args, code: a.code, out: steady(a.out), err: steady(a.err) }).toEqual({
        args,
        code: b.code,
        out: steady(b.out),
        err: steady(b.err),
      });
    };
    for (const args of cases) compare(args); // no daemon running
    const start = prebuilt('start');
    expect(start.code, start.err).toBe(0);
    for (const args of [
      ['status'],
      ['health'],
      ['emit', 'system:ping'],
      ['emit', 'system:pnig'],
      ['emit', 'kg:add_nodes', '{}'],
      ['start'],
    ])
      compare(args);
    expect(prebuilt('stop').code).toBe(0);
  }, 240_000);

  it('runs an edited source at the next command, and does not rebuild when nothing changed', () => {
    // A copy of what the CLI is built from, with the checkout's packages.
    const copy = tempHome('agentd-cli-copy-');
    try {
      for (const f of [
        'daemon-control.ts',
        'package.json',
        'tsconfig.json',
        'bin',
        'client',
        'daemon',
        'interfaces/control',
      ]) {
        fs.cpSync(path.join(ROOT, f), path.join(copy, f), { recursive: true });
      }
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
      const ctl = (...args: string[]): Run => run(path.join(copy, 'daemon-control.ts'), args, copy);
      const current = path.join(copy, '.cache', 'cli', 'current.json');

      expect(ctl('help').out).toMatch(/^usage: daemon-control <command>/);
      const first = fs.readFileSync(current, 'utf8');
      expect(ctl('help').code).toBe(0);
      expect(fs.readFileSync(current, 'utf8')).toBe(first);

      // An edit in a module the entry imports, and one in the entry itself.
      const args = path.join(copy, 'interfaces', 'control', 'args.ts');
      fs.writeFileSync(args, fs.readFileSync(args, 'utf8').replace('unknown option', 'no such option'));
      expect(ctl('health', '--jsno').err).toMatch(/^daemon-control: no such option --jsno/);
      const entry = path.join(copy, 'daemon-control.ts');
      fs.writeFileSync(
        entry,
        fs.readFileSync(entry, 'utf8').replace('usage: daemon-control <command>', 'usage: edited-control <command>'),
      );
      const edited = ctl('help');
      expect(edited.code).toBe(0);
      expect(edited.out).toMatch(/^usage: edited-control <command>/);
      expect(fs.readFileSync(current, 'utf8')).not.toBe(first);
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  }, 120_000);
});
