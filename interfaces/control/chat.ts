/**
 * `daemon-control chat [--profile P | --agent ID]`: a conversation with an agent. On a terminal:
 * tokens stream as they come, tool calls show inline as they happen, `/budget`, `/tools`, `/agent`,
 * `/quit`; Ctrl-C cancels the reply being written (`agent:cancel`), a second Ctrl-C quits. With a
 * pipe: stdin is one message, stdout gets the reply. The agent plugin keeps the history, so
 * `--agent ID` resumes a chat, also after the daemon restarted.
 */
import { randomBytes } from 'node:crypto';
import readline from 'node:readline';
import { EventClient } from '../../client/event-client.js';
import { DaemonError } from '../../client/errors.js';
import type { EventFrame } from '../../client/protocol.js';
import { UsageError } from './args.js';
import { agentLines, budgetLines, COLOR, ofTurn, PLAIN, toolLines, TurnView } from './chat-view.js';
import { messageMarkdown } from './mcp-transcript.js';

export interface ChatOptions {
  socketPath: string;
  profile?: string | undefined;
  agent?: string | undefined;
  model?: string | undefined;
}

const TURN_PATTERNS = ['completion:token', 'agent:tool_call', 'agent:tool_result'];
/** An agent:send waits for the turn; the agent plugin bounds the turn itself. */
const SEND_TIMEOUT_MS = 3_600_000;

const out = (s: string): void => void process.stdout.write(s);
const err = (s: string): void => void process.stderr.write(`${s}\n`);
const code = (e: unknown): DaemonError =>
  e instanceof DaemonError ? e : new DaemonError('HANDLER_ERROR', e instanceof Error ? e.message : String(e));
const newTurnId = (): string => `chat-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

/** The agent to talk to: the one named, or a new one (from the profile, streaming its replies). */
async function resolveAgent(
  c: EventClient,
  o: ChatOptions,
): Promise<{ info: Record<string, unknown>; spawned: boolean }> {
  if (o.agent !== undefined) {
    const info = await c.request('agent:info', { agent_id: o.agent, history_limit: 6, turns_limit: 0 });
    if (info.status === 'terminated')
      throw new DaemonError('CONFLICT', `agent ${o.agent} is terminated; start a new chat with --profile`);
    return { info, spawned: false };
  }
  const id = `chat-${new Date().toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(3).toString('hex')}`;
  await c.request('agent:spawn', {
    agent_id: id,
    stream: true,
    metadata: { chat: true },
    ...(o.profile !== undefined ? { profile: o.profile } : {}),
    ...(o.model !== undefined ? { model: o.model } : {}),
  });
  return { info: await c.request('agent:info', { agent_id: id, history_limit: 0, turns_limit: 0 }), spawned: true };
}

export async function runChat(o: ChatOptions): Promise<number> {
  if (o.profile !== undefined && o.agent !== undefined)
    throw new UsageError('chat takes --profile or --agent, not both');
  if (o.model !== undefined && o.agent !== undefined)
    throw new UsageError('--model is for a new chat (--profile); an agent keeps its model');
  let c: EventClient;
  try {
    c = await EventClient.connect({ socketPath: o.socketPath, reconnect: true, connectTimeoutMs: 1000 });
  } catch {
    err(`agentd is not running (no answer on ${o.socketPath})`);
    return 1;
  }
  try {
    const { info, spawned } = await resolveAgent(c, o);
    const agentId = String(info.agent_id);
    const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
    return tty ? await interactive(c, info, spawned) : await piped(c, agentId, spawned);
  } catch (e) {
    const de = code(e);
    err(`chat: ${de.code}: ${de.message}`);
    return 1;
  } finally {
    await c.close();
  }
}

/** Piped: one message from stdin, the reply on stdout. */
async function piped(c: EventClient, agentId: string, spawned: boolean): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const message = Buffer.concat(chunks).toString('utf8').trim();
  if (!message) {
    err('chat: nothing to send (stdin was empty)');
    return 1;
  }
  if (spawned) err(`agent ${agentId} (continue with: daemon-control chat --agent ${agentId})`);
  const turnId = newTurnId();
  const onSigint = (): void =>
    void c.request('agent:cancel', { agent_id: agentId, turn_id: turnId }).catch(() => undefined);
  process.once('SIGINT', onSigint);
  try {
    const r = await c.request(
      'agent:send',
      { agent_id: agentId, message, turn_id: turnId, wait: true },
      { timeoutMs: SEND_TIMEOUT_MS },
    );
    out(`${String(r.reply ?? '')}\n`);
    return 0;
  } catch (e) {
    const de = code(e);
    err(`chat: ${de.code}: ${de.message}`);
    return de.code === 'CANCELLED' ? 130 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

async function interactive(c: EventClient, info: Record<string, unknown>, spawned: boolean): Promise<number> {
  const style = process.env.NO_COLOR ? PLAIN : COLOR;
  const agentId = String(info.agent_id);
  let turn: { id: string; view: TurnView } | null = null;
  await c.subscribe(TURN_PATTERNS, (ev: EventFrame) => {
    if (turn && ofTurn(ev, agentId, turn.id)) turn.view.onEvent(ev);
  });

  out(
    `${style.who(`agent ${agentId}`)}${info.profile ? ` (${String(info.profile)})` : ''} · model ${String(info.model ?? 'default')} · tools: ${(info.tools as string[]).join(', ') || 'none'}\n`,
  );
  if (!spawned) {
    const history = (info.history ?? []) as Array<{
      role: 'user' | 'assistant';
      content: string | Array<Record<string, unknown>>;
    }>;
    if (history.length)
      out(style.dim(`… resuming, the last ${history.length} of ${String(info.history_length)} messages:\n`));
    for (const m of history)
      out(style.dim(`${m.role === 'user' ? 'you' : 'agent'}: ${messageMarkdown(m).slice(0, 400)}\n`));
  }
  out(style.dim('/help for commands · Ctrl-C cancels a reply, twice quits\n'));

  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt: `${style.who('you')} › `,
  });
  let interrupts = 0;
  let quitting = false;
  const pending: string[] = [];
  let busy = false;
  const done = new Promise<void>((resolve) => rl.once('close', () => resolve()));

  const quit = (): void => {
    if (quitting) return;
    quitting = true;
    if (turn)
      void c
        .request('agent:cancel', { agent_id: agentId, turn_id: turn.id }, { timeoutMs: 5000 })
        .catch(() => undefined);
    out(style.dim(`\nbye — resume with: daemon-control chat --agent ${agentId}\n`));
    rl.close();
  };

  rl.on('SIGINT', () => {
    interrupts++;
    if (interrupts >= 2) return quit();
    if (turn) {
      turn.view.note('(cancelling… Ctrl-C again quits)');
      void c
        .request('agent:cancel', { agent_id: agentId, turn_id: turn.id }, { timeoutMs: 10_000 })
        .catch(() => undefined);
    } else {
      out(style.dim('\n(Ctrl-C again or /quit to leave)\n'));
      rl.prompt();
    }
  });

  const command = async (line: string): Promise<void> => {
    const [cmd] = line.split(/\s+/);
    const say = (lines: string[]): void => void out(lines.map((l) => `${l}\n`).join(''));
    switch (cmd) {
      case '/quit':
      case '/exit':
        return quit();
      case '/help':
        return say([
          '/budget  what this agent (and the daemon) spent, against their limits',
          '/tools   the tools this agent may call',
          '/agent   this agent: model, usage, how to resume',
          '/quit    leave (the agent and its history stay)',
        ]);
      case '/budget': {
        const [a, g] = await Promise.all([
          c.request<{ scopes: never[] }>('budget:status', { scope: 'agent', id: agentId }),
          c.request<{ scopes: never[] }>('budget:status', { scope: 'global' }),
        ]);
        return say(budgetLines([...a.scopes, ...g.scopes]));
      }
      case '/tools': {
        const a = await c.request('agent:info', { agent_id: agentId, history_limit: 0, turns_limit: 0 });
        const tools = a.tools as string[];
        const servers = [...new Set(tools.filter((t) => t.startsWith('mcp:')).map((t) => t.slice(4).split('/')[0]!))];
        const mcp: Array<{ model_name: string; name: string; description: string | null; problem: string | null }> = [];
        const problems: string[] = [];
        for (const s of servers) {
          try {
            const r = await c.request<{ tools: typeof mcp }>('mcp:tools', { server: s });
            for (const t of r.tools) {
              if (!tools.includes(`mcp:${s}`) && !tools.includes(`mcp:${s}/${t.name}`)) continue;
              if (t.problem) problems.push(`${t.model_name}: left out (${t.problem})`);
              else mcp.push(t);
            }
          } catch (e) {
            problems.push(`mcp:${s}: ${code(e).code}: ${code(e).message}`);
          }
        }
        return say(
          toolLines(
            tools.filter((t) => !t.startsWith('mcp:')),
            mcp,
            problems,
          ),
        );
      }
      case '/agent':
        return say(agentLines(await c.request('agent:info', { agent_id: agentId, history_limit: 0, turns_limit: 0 })));
      default:
        return say([`unknown command ${cmd} (/help lists them)`]);
    }
  };

  const send = async (message: string): Promise<void> => {
    const view = new TurnView(out, style);
    turn = { id: newTurnId(), view };
    try {
      const r = await c.request(
        'agent:send',
        { agent_id: agentId, message, turn_id: turn.id, wait: true },
        { timeoutMs: SEND_TIMEOUT_MS },
      );
      view.finish(String(r.reply ?? ''));
      if (r.stop_reason && !['end_turn', 'stop_sequence'].includes(String(r.stop_reason)))
        view.note(`(stopped: ${String(r.stop_reason)})`);
    } catch (e) {
      const de = code(e);
      if (quitting) return;
      view.finish('');
      if (de.code === 'CANCELLED') view.note('(cancelled)');
      else view.note(`${de.code}: ${de.message}`);
    } finally {
      turn = null;
    }
  };

  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    while (pending.length && !quitting) {
      const line = pending.shift()!;
      try {
        if (line.startsWith('/')) await command(line);
        else {
          interrupts = 0;
          await send(line);
        }
      } catch (e) {
        out(`${style.bad(`${code(e).code}: ${code(e).message}`)}\n`);
      }
    }
    busy = false;
    if (!quitting) rl.prompt();
  };

  rl.on('line', (raw) => {
    const line = raw.trim();
    if (!line) return void (busy || rl.prompt());
    pending.push(line);
    void drain();
  });
  rl.prompt();
  await done;
  quit();
  return 0;
}
