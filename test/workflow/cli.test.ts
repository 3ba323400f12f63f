/** daemon-control run / runs / run status|signal|cancel against a real daemon, as a person types them. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { ROOT, startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { inputValue } from '../../interfaces/control/workflow.js';
import { KEY, waitFor, workflowConfig } from './helpers.js';

let api: MessagesApiServer;
let d: DaemonHandle;
const home = tempHome('agentd-wf-cli-');
const library = path.join(home, 'workflows');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run daemon-control with the test daemon's socket; resolves when it exits. */
function ctl(args: string[], opts: { onStdout?: (s: string) => void } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn(path.join(ROOT, 'daemon-control.ts'), args, {
      cwd: home,
      env: { ...process.env, AGENTD_SOCKET: d.socketPath, AGENTD_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => {
      stdout += b;
      opts.onStdout?.(stdout);
    });
    p.stderr.on('data', (b: Buffer) => (stderr += b));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  fs.mkdirSync(library);
  fs.writeFileSync(
    path.join(library, 'greet.yaml'),
    `
description: greets each name, then asks for approval
inputs:
  names: {type: array, required: true}
  shout: {type: boolean, default: false}
steps:
  - id: greet
    foreach: '{{ inputs.names }}'
    concurrency: 2
    agent: {model: test-model, message: 'Greet {{ item }}'}
  - id: approve
    needs: [greet]
    wait: {prompt: 'send {{ steps.greet.output }}?'}
  - id: done
    needs: [approve]
    event: system:ping
`,
  );
  fs.writeFileSync(
    path.join(library, 'files.yaml'),
    `
inputs:
  docs: {type: array, required: true}
  note: {type: string, required: true}
steps:
  - id: count
    event: kg:add_nodes
    foreach: '{{ inputs.docs }}'
    data: {nodes: [{id: '{{ run.id }}-{{ index }}', label: Paper, properties: {path: '{{ item.path }}', text: '{{ item.content }}', note: '{{ inputs.note }}'}}]}
`,
  );
  fs.mkdirSync(path.join(home, 'notes', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(home, 'notes', 'a.md'), 'alpha');
  fs.writeFileSync(path.join(home, 'notes', 'sub', 'b.md'), 'beta');
  fs.writeFileSync(path.join(home, 'note.txt'), 'from a file');
  api = await startMessagesApiServer();
  api.setHandler(() => ({ text: 'hello!', delayMs: 30 }));
  d = await startDaemon({
    home,
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: workflowConfig({ workflow: { workflows_dir: library } }),
    readyTimeoutMs: 60_000,
  });
}, 90_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

describe('daemon-control run', () => {
  it('follows a run live: a line per step, the foreach progress, the wait with how to release it; signal finishes it', async () => {
    let runId = '';
    const p = ctl(['run', 'greet', '--input', 'names=["ann","bob","cy"]', '--run-id', 'cli-greet'], {
      onStdout: (s) => {
        if (!runId && s.includes('run signal')) runId = 'cli-greet';
      },
    });
    await waitFor(() => runId, 60_000, 'the wait step');
    const sig = await ctl(['run', 'signal', 'cli-greet', 'approve', '{"ok": true}']);
    expect(sig.code).toBe(0);
    expect(sig.stdout).toMatch(/signalled approve/);
    const r = await p;
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('run cli-greet: greet, 3 steps');
    expect(r.stdout).toMatch(/▶ greet \(foreach\)/);
    expect(r.stdout).toMatch(/greet \[#{20}\] 3\/3/);
    expect(r.stdout).toMatch(/✓ greet succeeded [\d.]+s \(3\/3 items\)/);
    expect(r.stdout).toMatch(/⏸ approve waits: send \[/);
    expect(r.stdout).toMatch(/✓ done succeeded/);
    expect(r.stdout).toMatch(/^succeeded in [\d.]+s, \$0\.\d+$/m);
  });

  it('reads --input @file as text and @dir as [{path, content}]', async () => {
    expect(inputValue('@notes', home)).toEqual([
      { path: 'a.md', content: 'alpha' },
      { path: 'sub/b.md', content: 'beta' },
    ]);
    const r = await ctl(['run', 'files', '--input', 'docs=@notes', '-i', 'note=@note.txt', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const st = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { status: string; run_id: string };
    expect(st.status).toBe('succeeded');
    const n = await d.client.request<{ node: { properties: Record<string, string> } }>('kg:get', {
      id: `${st.run_id}-1`,
    });
    expect(n.node.properties).toMatchObject({ path: 'sub/b.md', text: 'beta', note: 'from a file' });
  });

  it('runs lists runs; run status shows steps; run cancel stops one; a failed or invalid run exits 1, bad usage 2', async () => {
    const runs = await ctl(['runs', '--limit', '5']);
    expect(runs.code, runs.stderr).toBe(0);
    expect(runs.stdout).toMatch(/cli-greet\s+greet\s+succeeded/);
    const st = await ctl(['run', 'status', 'cli-greet']);
    expect(st.stdout).toMatch(/^run cli-greet: greet succeeded/);
    expect(st.stdout).toMatch(/greet\s+succeeded\s+\[#{10}\] 3\/3/);
    const det = await ctl(['run', 'greet', '--input', 'names=["x"]', '--run-id', 'cli-cx', '--detach']);
    expect(det.stdout.trim()).toBe('run cli-cx running');
    await waitFor(
      async () =>
        (await d.client.request<{ status: string }>('workflow:status', { run_id: 'cli-cx' })).status === 'waiting',
      30_000,
      'waiting',
    );
    const cx = await ctl(['run', 'cancel', 'cli-cx']);
    expect(cx.stdout.trim()).toBe('run cli-cx cancelled');
    const bad = await ctl(['run', 'greet', '--input', 'names=notalist']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/INVALID_DATA: .*input "names" must be a list/);
    expect((await ctl(['run', 'greet', '--budget', 'lots'])).code).toBe(2);
    expect((await ctl(['run'])).code).toBe(2);
    expect((await ctl(['runs', '--limt', '3'])).stderr).toMatch(/did you mean --limit/);
  });
});
