/**
 * daemon-control as a newcomer meets it: typos are one-line usage errors (exit 2), a start that
 * is not healthy exits 1 and says why (only this start's output), config typos name the closest
 * key, and the command works from any directory.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempHome } from '../helpers/daemon-process.js';
import { showLogs } from '../../interfaces/control/logs.js';
import { REAL_PLUGINS } from './kit.js';

const homes: string[] = [];

function ctlIn(home: string, extraEnv: Record<string, string> = {}, cwd = ROOT) {
  const env: Record<string, string | undefined> = { ...process.env, AGENTD_HOME: home, ...extraEnv };
  delete env.AGENTD_SOCKET;
  if (!extraEnv.AGENTD_CONFIG) env.AGENTD_CONFIG = path.join(home, 'agentd.yaml');
  return (...args: string[]) => {
    const r = spawnSync(path.join(ROOT, 'daemon-control.ts'), args, { cwd, env, encoding: 'utf8', timeout: 90_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
}

/** A home whose agentd.yaml enables only `only` of the real plugins, plus `extra` YAML. */
function homeWith(only: string[], extra = ''): string {
  const home = tempHome('agentd-cli-');
  homes.push(home);
  const disabled = REAL_PLUGINS.filter((p) => !only.includes(p));
  fs.writeFileSync(
    path.join(home, 'agentd.yaml'),
    `daemon:\n  disabled_plugins: ${JSON.stringify(disabled)}\n${extra}`,
  );
  return home;
}

afterAll(() => {
  for (const h of homes) ctlIn(h)('stop');
});

describe('strict arguments', () => {
  const ctl = ctlIn(homeWith([]));
  it.each([
    [['health', '--jsno'], /^daemon-control: unknown option --jsno \(did you mean --json\?\)\n$/],
    [['emit', 'system:ping', '{}', 'extra'], /^daemon-control: unexpected argument "extra"/],
    [['emit', 'system:ping', '{"a": 1,}'], /^daemon-control: the data for system:ping is not valid JSON: .*\n$/],
    [['emit', 'system:ping', '[1]'], /^daemon-control: the data for system:ping must be a JSON object/],
    [['status', 'now'], /^daemon-control: unexpected argument "now"/],
    [['stop', '--timeout'], /^daemon-control: option --timeout needs a value/],
    [['stop', '--timeout', 'soon'], /^daemon-control: --timeout takes a number of seconds/],
    [['logs', '-n', 'ten'], /^daemon-control: -n takes a count of lines/],
    [['strat'], /^daemon-control: unknown command "strat" \(did you mean start\?/],
    [['start', '--forground'], /^daemon-control: unknown option --forground \(did you mean --foreground\?\)/],
  ])('%j → one line on stderr, exit 2', (args, message) => {
    const r = ctl(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.out).toBe('');
  });

  it('works from another directory (tsx is found beside the script, not in the working directory)', () => {
    const r = ctlIn(homeWith([]), {}, os.tmpdir())('status');
    expect(r.err).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find/);
    expect(r).toMatchObject({ code: 1, out: 'agentd is not running\n' });
  });

  it('monitor takes its filter as positional patterns', () => {
    // Without a terminal the monitor refuses after checking its arguments: the patterns were accepted.
    const r = ctl('monitor', 'agent:*', 'kg:*');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/needs an interactive terminal/);
    const bad = ctl('monitor', 'Agent Star');
    expect(bad.code).toBe(2);
    expect(bad.err).not.toMatch(/interactive terminal/);
  });
});

describe('start tells the truth', () => {
  it('a start whose plugin config is invalid exits 1 naming the variable, and a second start points to restart', () => {
    const ctl = ctlIn(homeWith(['sandbox']), { AGENTD_SANDBOX_POOL_SIZE: 'lots' });
    const r = ctl('start');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unhealthy/);
    expect(r.err).toMatch(/sandbox: failed \(config section "sandbox": pool_size: .*AGENTD_SANDBOX_POOL_SIZE="lots"/);
    expect(r.err).toMatch(/restart/);
    const again = ctl('start');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already running .*"restart"/);
    expect(ctl('stop').code).toBe(0);
  });

  it('a misspelt key in agentd.yaml fails its plugin, naming the closest valid key', () => {
    const ctl = ctlIn(homeWith(['sandbox'], 'sandbox:\n  pool_sise: 4\n  limits: {memroy_mb: 3}\n'));
    const r = ctl('start');
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'unknown keys pool_sise (did you mean pool_size?), limits.memroy_mb (did you mean memory_mb?)',
    );
    expect(ctl('stop').code).toBe(0);
  });

  it("an unknown section stops the start; the output shown is only this start's", () => {
    const home = homeWith([]);
    const first = ctlIn(home, { AGENTD_CONFIG: path.join(home, 'missing.yaml') })('start');
    expect(first.code).toBe(1);
    expect(first.err).toMatch(/missing\.yaml: no such file/);
    fs.appendFileSync(path.join(home, 'agentd.yaml'), 'sandox:\n  pool_size: 4\n');
    const second = ctlIn(home)('start');
    expect(second.code).toBe(1);
    expect(second.err).toMatch(/unknown section "sandox" \(did you mean sandbox\?\)/);
    expect(second.err).not.toMatch(/missing\.yaml/);
  });
});

describe('logs', () => {
  it('are readable lines for a terminal and JSON lines for a pipe', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-logs-'));
    const file = path.join(dir, 'daemon.log');
    fs.writeFileSync(
      file,
      `${JSON.stringify({ level: 30, time: 1764000000123, pid: 7, plugin: 'kg', msg: 'plugin started' })}\nnot json\n`,
    );
    let pretty = '';
    await showLogs({ file, lines: 10, follow: false, json: false, write: (s) => void (pretty += s) });
    expect(pretty).toMatch(/INFO.*\(7\): plugin started/);
    expect(pretty).toMatch(/plugin: "kg"/);
    expect(pretty).toMatch(/^not json$/m);
    let raw = '';
    await showLogs({ file, lines: 1, follow: false, json: true, write: (s) => void (raw += s) });
    expect(raw).toBe('not json\n');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
