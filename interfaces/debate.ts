#!/usr/bin/env -S node --import tsx --no-warnings
/**
 * Run a debate from the command line through the client library and print it live:
 *
 *   tsx interfaces/debate.ts "Is a hot dog a sandwich?" --rounds 3 --profiles researcher,critic
 *
 * Spawns one agent per profile, runs `agent:converse` on them, prints every utterance (and the tools
 * the speakers call) as the events arrive, then terminates the agents unless --keep. Exit codes:
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

/** Run one debate on a connected client; `write` receives the live transcript line by line. */
export async function runDebate(client: EventClient, o: DebateOptions, write: (line: string) => void): Promise<DebateResult> {
  const tag = randomBytes(3).toString('hex');
  const agents: string[] = [];
  const names = new Map<string, string>();
  const color = new Map<string, number>();
  let lastRound = 0;

  const onEvent = (ev: EventFrame): void => {
    const id = String(ev.data.agent_id ?? '');
    if (!names.has(id)) return;
    const who = paint(color.get(id)!, names.get(id)!);
    if (ev.event === 'agent:utterance') {
      const round = Number(ev.data.round);
      if (round !== lastRound) {
        lastRound = round;
        write(paint(2, `── round ${round} of ${o.rounds} ──`));
      }
      write(`${who}: ${String(ev.data.text).trim()}`);
      write('');
    } else if (ev.event === 'agent:tool_call') {
      write(paint(2, `   ${names.get(id)} calls ${String(ev.data.name)} ${JSON.stringify(ev.data.input).slice(0, 120)}`));
    } else if (ev.event === 'agent:error') {
      write(paint(31, `   ${names.get(id)} failed: ${String(ev.data.code)} ${String(ev.data.message)}`));
    }
  };
  const sub = await client.subscribe(['agent:utterance', 'agent:tool_call', 'agent:error'], onEvent);
  try {
    for (const [i, profile] of o.profiles.entries()) {
      const agentId = `debate-${tag}-${i + 1}-${profile}`;
      names.set(agentId, `${profile}${o.profiles.indexOf(profile) !== i ? ` #${i + 1}` : ''}`);
      color.set(agentId, COLORS[i % COLORS.length]!);
      await client.request('agent:spawn', { agent_id: agentId, profile, ...(o.model ? { model: o.model } : {}), metadata: { debate: tag } });
      agents.push(agentId);
    }
    write(paint(1, `Debate: ${o.topic}`));
    write(paint(2, `${o.rounds} rounds between ${o.profiles.join(' and ')}`));
    write('');
    const r = await client.request('agent:converse', { agents, opening: o.topic, rounds: o.rounds }, { timeoutMs: o.timeoutMs ?? 1_800_000 });
    const transcript = r.transcript as DebateResult['transcript'];
    const cost = await Promise.all(agents.map((a) => client.request('agent:info', { agent_id: a, history_limit: 0 }).then((i) => Number((i.usage as { cost_usd: number }).cost_usd))));
    write(paint(2, `done: ${transcript.length} utterances, $${cost.reduce((a, b) => a + b, 0).toFixed(4)}`));
    return { conversation_id: String(r.conversation_id), agents, transcript };
  } finally {
    await sub.unsubscribe().catch(() => undefined);
    if (!o.keep) for (const a of agents) await client.request('agent:terminate', { agent_id: a, reason: 'debate over' }).catch(() => undefined);
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
  const profiles = String(values.profiles).split(',').map((s) => s.trim()).filter(Boolean);
  if (values.help || positionals.length === 0 || !Number.isInteger(rounds) || rounds < 1 || profiles.length < 2) {
    process.stderr.write('usage: debate.ts "<topic>" [--rounds N] [--profiles a,b] [--model M] [--socket PATH] [--keep]\n');
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
    await runDebate(client, { topic: positionals.join(' '), profiles, rounds, ...(values.model ? { model: values.model } : {}), keep: values.keep }, (l) => process.stdout.write(l + '\n'));
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
