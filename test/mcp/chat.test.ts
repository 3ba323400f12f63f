/**
 * `daemon-control chat` through a pipe (one message in, the reply out; history kept by the agent
 * plugin, also across a daemon restart) and in a real terminal (tmux): tokens on screen while they
 * stream, tool calls inline, the slash commands, Ctrl-C cancelling the reply, a second one quitting.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IN_CI, ROOT, startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import {
  startMessagesApiServer,
  type MessagesApiServer,
  type RecordedRequest,
} from '../fixtures/messages-api-server.js';
import { agentConfig, KEY, toolUse, waitFor } from '../agent/helpers.js';
import { DAEMON_CONTROL, daemonEnv, tempDir } from './helpers.js';

const STORY = 'Once upon a time a daemon routed events to plugins, and every one of them arrived.';

let api: MessagesApiServer;
let d: DaemonHandle;
let profiles: string;

function lastText(r: RecordedRequest): { text: string; toolResult: boolean } {
  const msgs = r.body.messages as Array<{ content: unknown }>;
  const c = msgs[msgs.length - 1]!.content;
  if (typeof c === 'string') return { text: c, toolResult: false };
  const last = (c as Array<{ type: string; text?: string }>).at(-1)!;
  return { text: last.text ?? '', toolResult: last.type === 'tool_result' };
}

const script = (req: RecordedRequest) => {
  const u = lastText(req);
  if (u.toolResult) return { text: 'The graph knows n1.' };
  if (u.text.includes('look in the graph')) return toolUse('kg_query', { label: 'Concept' });
  if (u.text.includes('story')) return { text: STORY, chunkChars: 3, eventDelayMs: 40 };
  if (u.text.includes('wait forever')) return { kind: 'hang' as const };
  return { text: `echo: ${u.text}` };
};

const config = (): string => agentConfig({ agent: { profiles_dir: profiles } });
const start = (home?: string): Promise<DaemonHandle> =>
  startDaemon({
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: config(),
    ...(home ? { home } : {}),
  });

beforeAll(async () => {
  profiles = tempDir('agentd-chat-profiles-');
  fs.writeFileSync(
    path.join(profiles, 'helper.yaml'),
    'description: A helpful agent for the chat tests.\nsystem: You help.\ntools: [kg_query]\n',
  );
  api = await startMessagesApiServer();
  d = await start();
  await d.client.request('kg:add_nodes', { nodes: [{ id: 'n1', label: 'Concept' }] });
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

beforeEach(() => {
  api.reset();
  api.setHandler(script);
});

function chatPipe(args: string[], input: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(DAEMON_CONTROL, ['chat', ...args], { env: daemonEnv(d), cwd: ROOT });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('close', (code) => resolve({ code, out, err }));
    p.stdin.end(input);
  });
}

describe('chat through a pipe', () => {
  it('reads one message, prints the reply; --agent continues the same history, also after a restart', async () => {
    const first = await chatPipe(['--profile', 'helper'], 'hello there\n');
    expect(first.code).toBe(0);
    expect(first.out).toBe('echo: hello there\n');
    const id = /agent (chat-[\w-]+) \(continue with: daemon-control chat --agent \1\)/.exec(first.err)?.[1];
    expect(id).toBeDefined();

    const second = await chatPipe(['--agent', id!], 'and again');
    expect([second.code, second.out, second.err]).toEqual([0, 'echo: and again\n', '']);
    const sent = api.messageRequests().at(-1)!.body.messages as Array<{ role: string; content: unknown }>;
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);

    await d.stop();
    d = await start(d.home);
    const third = await chatPipe(['--agent', id!], 'after the restart');
    expect(third.out).toBe('echo: after the restart\n');
    expect((api.messageRequests().at(-1)!.body.messages as unknown[]).length).toBe(5);
  }, 90_000);

  it.each([
    [['--profile', 'nosuch'], 'hi', 1, /^chat: NOT_FOUND: no profile "nosuch"/],
    [['--agent', 'nobody'], 'hi', 1, /^chat: NOT_FOUND: no agent nobody/],
    [['--profile', 'helper', '--agent', 'x'], 'hi', 2, /chat takes --profile or --agent, not both/],
    [['--profile', 'helper'], '  \n', 1, /nothing to send/],
  ])('%j with %j exits %i saying why', async (args, input, code, message) => {
    const r = await chatPipe(args, input);
    expect(r.code).toBe(code);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
  });
});

const HAVE_TMUX = spawnSync('tmux', ['-V']).status === 0;
const SKIP = !HAVE_TMUX && !IN_CI;
if (SKIP) console.warn('chat in tmux skipped: tmux is not installed (CI installs it)');
const SERVER = `agentd-chat-test-${process.pid}`;
const tmux = (...args: string[]): string => {
  const r = spawnSync('tmux', ['-L', SERVER, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const screen = (): string => tmux('capture-pane', '-p', '-J', '-t', 'chat');
const keys = (...k: string[]): void => void tmux('send-keys', '-t', 'chat', ...k);
const type = (line: string): void => {
  keys('-l', line);
  keys('Enter');
};
const until = (ok: (s: string) => boolean, what: string, ms = 20_000): Promise<string> =>
  waitFor(
    () => {
      const s = screen();
      return ok(s) ? s : null;
    },
    ms,
    what,
  );

describe.skipIf(SKIP)('chat in a terminal (tmux)', () => {
  afterAll(() => void spawnSync('tmux', ['-L', SERVER, 'kill-server']));

  it('streams, shows tool calls inline, answers /tools /budget /agent, cancels with Ctrl-C and quits with a second', async () => {
    const exitFile = path.join(d.home, 'chat.exit');
    const env = daemonEnv(d);
    const cmd = `cd ${JSON.stringify(ROOT)} && env AGENTD_HOME=${JSON.stringify(env.AGENTD_HOME)} AGENTD_SOCKET=${JSON.stringify(env.AGENTD_SOCKET)} ./daemon-control.ts chat --profile helper; echo "exit=$?" > ${JSON.stringify(exitFile)}; sleep 30`;
    tmux('new-session', '-d', '-x', '120', '-y', '40', '-s', 'chat', cmd);
    let s = await until((x) => x.includes('you › '), 'the prompt');
    const id = /agent (chat-[\w-]+) \(helper\) · model default · tools: kg_query/.exec(s)?.[1];
    expect(id).toBeDefined();

    // Tokens reach the screen while the reply is still being written.
    type('tell me a story');
    let partial = false;
    await waitFor(
      () => {
        const x = screen();
        const line = x.split('\n').find((l) => l.startsWith('Once upon')) ?? '';
        if (line && line !== STORY) partial = true;
        return x.includes(STORY) && x.trimEnd().endsWith('you ›');
      },
      20_000,
      'the story',
    );
    expect(partial).toBe(true);

    type('look in the graph');
    s = await until((x) => x.includes('The graph knows n1.'), 'the tool call and reply');
    const lines = s.split('\n');
    const call = lines.findIndex((l) => l.includes('⚙ kg_query {"label":"Concept"}'));
    expect(call).toBeGreaterThan(0);
    expect(lines[call + 1]).toMatch(/✓ kg_query \(\d+ ms\)/);
    expect(lines[call + 2]).toBe('The graph knows n1.');

    type('/tools');
    await until((x) => /^kg_query$/m.test(x), '/tools');
    type('/budget');
    await until(
      (x) => new RegExp(`^agent ${id}: spent \\$[\\d.]+ no limit`, 'm').test(x) && /^global: spent/m.test(x),
      '/budget',
    );
    type('/agent');
    await until(
      (x) => x.includes(`resume this chat with: daemon-control chat --agent ${id}`) && /turns 2 · tool calls 1/.test(x),
      '/agent',
    );

    // Ctrl-C cancels the reply being written; the agent stays and answers the next message.
    type('wait forever');
    await waitFor(() => api.inFlight() > 0, 20_000, 'the model call');
    keys('C-c');
    await until((x) => x.includes('(cancelled)') && x.trimEnd().endsWith('you ›'), 'the cancelled reply');
    const info = await d.client.request<{ turns: Array<{ status: string }> }>('agent:info', { agent_id: id! });
    expect(info.turns[0]!.status).toBe('cancelled');
    await waitFor(() => api.inFlight() === 0, 10_000, 'the model call to be abandoned');
    type('still there?');
    await until((x) => x.includes('echo: still there?'), 'the next reply');

    // Ctrl-C at the prompt warns; a second one quits, saying how to resume.
    keys('C-c');
    await until((x) => x.includes('(Ctrl-C again or /quit to leave)'), 'the warning');
    keys('C-c');
    await waitFor(() => fs.existsSync(exitFile), 10_000, 'chat to exit');
    expect(fs.readFileSync(exitFile, 'utf8').trim()).toBe('exit=0');
    expect(screen()).toContain(`bye — resume with: daemon-control chat --agent ${id}`);
  }, 120_000);
});
