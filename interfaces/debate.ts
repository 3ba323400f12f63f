#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" --no-warnings "$0" "$@"'
/**
 * Run a debate from the command line through the client library and print it live:
 *
 *   tsx interfaces/debate.ts "Is a hot dog a sandwich?" --rounds 3 --profiles researcher,critic
 *
 * Spawns one agent per profile (streaming), runs `agent:converse` on them, prints each speaker's text
 * token by token as the events arrive (and the tools they call), then terminates the agents unless --keep. Exit codes:
 * 0 the debate ran to the end, 1 it failed (or the daemon is not there), 2 usage.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { EventClient } from '../client/event-client.js';
import { DaemonError } from '../client/errors.js';
import type { EventFrame } from '../client/protocol.js';
import { defaultSocketPath } from '../client/socket-path.js';

export interface DebateOptions {
  topic: string;
  profiles: string[];
  rounds: number;
  model?: string;
  keep?: boolean;
  timeoutMs?: number;
}

export interface DebateResult {
  conversation_id: string;
  agents: string[];
  transcript: Array<{ round: number; agent_id: string; text: string }>;
}

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number, s: string): string => (useColor ? `\x1b[${code}m${s}\x1b[0m` : s);
const COLORS = [36, 33, 35, 32, 34, 31];

/**
 * Run one debate on a connected client. `out` receives the live transcript as it happens: each
 * speaker's text streamed token by token (the agents are spawned with stream: true), tool calls on
 * their own lines, a header per round.
 */
export async function runDebate(
  client: EventClient,
  o: DebateOptions,
  out: (text: string) => void,
): Promise<DebateResult> {
  const tag = randomBytes(3).toString('hex');
  const agents: string[] = [];
  const names = new Map<string, string>();
  const color = new Map<string, number>();
  let started = 0;
  /** The speaker whose line is open (text streamed, not yet ended), and whether it got any text. */
  let open: { id: string; streamed: boolean; prefixed: boolean } | null = null;
  const who = (id: string): string => paint(color.get(id)!, names.get(id)!);
  const endLine = (): void => {
    if (open?.prefixed) out('\n');
    if (open) open.prefixed = false;
  };

  const onEvent = (ev: EventFrame): void => {
    const id = String(ev.data.agent_id ?? '');
    if (!names.has(id)) return;
    switch (ev.event) {
      case 'agent:turn_started': {
        if (ev.data.source !== 'converse') return;
        const round = Math.floor(started++ / agents.length) + 1;
        if (started % agents.length === 1 || agents.length === 1)
          out(paint(2, `── round ${round} of ${o.rounds} ──`) + '\n');
        open = { id, streamed: false, prefixed: false };
        return;
      }
      case 'completion:token': {
        if (!open || open.id !== id) return;
        if (!open.prefixed) {
          out(`${who(id)}: `);
          open.prefixed = true;
        }
        out(String(ev.data.text));
        open.streamed = true;
        return;
      }
      case 'agent:tool_call':
        endLine();
        out(
          paint(2, `   ${names.get(id)} calls ${String(ev.data.name)} ${JSON.stringify(ev.data.input).slice(0, 120)}`) +
            '\n',
        );
        return;
      case 'agent:utterance':
        // Without streamed text (a provider that does not stream), print the utterance whole.
        if (!open?.streamed) out(`${who(id)}: ${String(ev.data.text).trim()}\n`);
        else endLine();
        out('\n');
        open = null;
        return;
      case 'agent:error':
        endLine();
        out(paint(31, `   ${names.get(id)} failed: ${String(ev.data.code)} ${String(ev.data.message)}`) + '\n');
        return;
    }
  };
  const sub = await client.subscribe(
    ['agent:turn_started', 'completion:token', 'agent:utterance', 'agent:tool_call', 'agent:error'],
    onEvent,
  );
  try {
    for (const [i, profile] of o.profiles.entries()) {
      const agentId = `debate-${tag}-${i + 1}-${profile}`;
      names.set(agentId, `${profile}${o.profiles.indexOf(profile) !== i ? ` #${i + 1}` : ''}`);
      color.set(agentId, COLORS[i % COLORS.length]!);
      await client.request('agent:spawn', {
        agent_id: agentId,
        profile,
        stream: true,
        ...(o.model ? { model: o.model } : {}),
        metadata: { debate: tag },
      });
      agents.push(agentId);
    }
    out(paint(1, `Debate: ${o.topic}`) + '\n');
    out(paint(2, `${o.rounds} rounds between ${o.profiles.join(' and ')}`) + '\n\n');
    const r = await client.request(
      'agent:converse',
      { agents, opening: o.topic, rounds: o.rounds },
      { timeoutMs: o.timeoutMs ?? 1_800_000 },
    );
    const transcript = r.transcript as DebateResult['transcript'];
    const cost = await Promise.all(
      agents.map((a) =>
        client
          .request('agent:info', { agent_id: a, history_limit: 0 })
          .then((i) => Number((i.usage as { cost_usd: number }).cost_usd)),
      ),
    );
    out(paint(2, `done: ${transcript.length} utterances, $${cost.reduce((a, b) => a + b, 0).toFixed(4)}`) + '\n');
    return { conversation_id: String(r.conversation_id), agents, transcript };
  } finally {
    await sub.unsubscribe().catch(() => undefined);
    if (!o.keep)
      for (const a of agents)
        await client.request('agent:terminate', { agent_id: a, reason: 'debate over' }).catch(() => undefined);
  }
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        rounds: { type: 'string', short: 'r', default: '3' },
        profiles: { type: 'string', short: 'p', default: 'researcher,critic' },
        model: { type: 'string', short: 'm' },
        socket: { type: 'string', short: 's' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`debate: ${(e as Error).message}\n`);
    return 2;
  }
  const { values, positionals } = args;
  const rounds = Number(values.rounds);
  const profiles = String(values.profiles)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (values.help || positionals.length === 0 || !Number.isInteger(rounds) || rounds < 1 || profiles.length < 2) {
    process.stderr.write(
      'usage: debate.ts "<topic>" [--rounds N] [--profiles a,b] [--model M] [--socket PATH] [--keep]\n',
    );
    return values.help ? 0 : 2;
  }
  let client: EventClient;
  try {
    client = await EventClient.connect({ socketPath: values.socket ?? defaultSocketPath(), reconnect: false });
  } catch (e) {
    process.stderr.write(`debate: cannot reach the daemon: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    await runDebate(
      client,
      {
        topic: positionals.join(' '),
        profiles,
        rounds,
        ...(values.model ? { model: values.model } : {}),
        keep: values.keep,
      },
      (t) => process.stdout.write(t),
    );
    return 0;
  } catch (e) {
    process.stderr.write(`debate: ${e instanceof DaemonError ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  } finally {
    await client.close().catch(() => undefined);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
