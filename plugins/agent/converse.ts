/**
 * Multi-agent conversation: agents speak in turn on a shared topic for a number of rounds, each
 * seeing what the others said since it last spoke. Journaled in agent_conversations; each
 * utterance is an ordinary agent turn with a deterministic id, so after a restart the conversation
 * picks up at the utterance it was waiting for.
 */
import { randomUUID } from 'node:crypto';
import { DaemonError, type EventContext } from '../../daemon/plugin-api.js';
import type { AgentService } from './service.js';
import type { TurnError, Utterance } from './store.js';

export interface ConverseInput {
  agents?: string[] | undefined;
  profiles?: string[] | undefined;
  model?: string | undefined;
  opening: string;
  rounds: number;
  keep_agents: boolean;
}

type Emit = (event: string, data: Record<string, unknown>, opts: { context?: EventContext }) => void;

export class Conversations {
  private readonly running = new Map<string, Promise<Record<string, unknown>>>();

  constructor(
    private readonly svc: AgentService,
    private readonly emit: Emit,
  ) {}

  async start(input: ConverseInput, context: EventContext): Promise<Record<string, unknown>> {
    const conversationId = `conv-${randomUUID()}`;
    let agents = input.agents ?? [];
    const spawned: string[] = [];
    if (input.profiles) {
      try {
        for (const [i, profile] of input.profiles.entries()) {
          const r = await this.svc.spawn(
            {
              profile,
              agent_id: `${conversationId}.${i}-${profile}`.slice(0, 128),
              ...(input.model ? { model: input.model } : {}),
              metadata: { conversation_id: conversationId },
            },
            context,
          );
          spawned.push(String(r.agent_id));
        }
      } catch (e) {
        for (const id of spawned)
          await this.svc
            .terminate({ agent_id: id, cascade: true, reason: 'conversation could not start' }, context)
            .catch(() => undefined);
        throw e;
      }
      agents = spawned;
    } else {
      for (const id of agents) {
        const a = this.svc.store.agent(id);
        if (!a) throw new DaemonError('NOT_FOUND', `no agent ${id}`, { agent_id: id });
        if (a.status === 'terminated') throw new DaemonError('CONFLICT', `agent ${id} is terminated`, { agent_id: id });
      }
    }
    await this.svc.gc.run(() =>
      this.svc.store.insertConversation({
        conversation_id: conversationId,
        agents,
        spawned,
        opening: input.opening,
        rounds: input.rounds,
        keep_agents: input.keep_agents,
        context,
        created_at: Date.now(),
      }),
    );
    return this.run(conversationId);
  }

  /** Run (or resume) a conversation to its end. */
  run(conversationId: string): Promise<Record<string, unknown>> {
    let p = this.running.get(conversationId);
    if (!p) {
      p = this.loop(conversationId).finally(() => this.running.delete(conversationId));
      this.running.set(conversationId, p);
    }
    return p;
  }

  get(conversationId: string): Record<string, unknown> {
    const c = this.svc.store.conversation(conversationId);
    if (!c)
      throw new DaemonError('NOT_FOUND', `no conversation ${conversationId}`, { conversation_id: conversationId });
    return {
      conversation_id: c.conversation_id,
      status: c.status,
      agents: c.agents,
      rounds: c.rounds,
      opening: c.opening,
      transcript: c.transcript,
      error: c.error,
    };
  }

  private async loop(conversationId: string): Promise<Record<string, unknown>> {
    const store = this.svc.store;
    const c = store.conversation(conversationId)!;
    const context = c.context ?? undefined;
    const n = c.agents.length;
    const transcript: Utterance[] = [...c.transcript];
    let error: TurnError | null = null;
    try {
      for (let i = transcript.length; i < c.rounds * n; i++) {
        const speaker = c.agents[i % n]!;
        const round = Math.floor(i / n) + 1;
        const turnId = `${conversationId}.u${i}`;
        if (!store.turn(turnId)) {
          await this.svc.enqueue(speaker, {
            source: 'converse',
            input: promptFor(c.opening, transcript, speaker, i),
            context: context!,
            turn_id: turnId,
            conversation_id: conversationId,
            durable: false,
          });
        }
        const r = await this.svc.outcome(turnId);
        const u: Utterance = { round, agent_id: speaker, text: String(r.reply ?? ''), turn_id: turnId };
        transcript.push(u);
        await this.svc.gc.run(() => store.setConversationTranscript(conversationId, transcript));
        this.emit(
          'agent:utterance',
          { conversation_id: conversationId, round, index: i, agent_id: speaker, text: u.text },
          { context },
        );
      }
    } catch (e) {
      const de = e instanceof DaemonError ? e : new DaemonError('HANDLER_ERROR', String(e));
      // Shutdown: the conversation stays running in the journal and resumes at the next start.
      if (de.code === 'SHUTTING_DOWN' || this.svc.isStopping()) throw de;
      error = { code: de.code, message: de.message };
    }
    const status = error ? 'failed' : 'completed';
    await this.svc.gc.run(() => store.finishConversation(conversationId, status, error, Date.now()));
    this.emit(
      'agent:conversation_ended',
      { conversation_id: conversationId, status, utterances: transcript.length, error },
      { context },
    );
    if (!c.keep_agents) {
      for (const id of c.spawned)
        await this.svc
          .terminate(
            { agent_id: id, cascade: true, reason: `conversation ${conversationId} ended` },
            context ?? rootless(),
          )
          .catch(() => undefined);
    }
    if (error)
      throw new DaemonError(
        error.code as ConstructorParameters<typeof DaemonError>[0],
        `conversation ${conversationId} failed after ${transcript.length} utterances: ${error.message}`,
        { conversation_id: conversationId, transcript },
      );
    return { conversation_id: conversationId, status, agents: c.agents, rounds: c.rounds, transcript };
  }

  /** Resume every conversation a restart interrupted (in the background). */
  recover(log: (err: unknown, id: string) => void): number {
    const rows = this.svc.store.runningConversations();
    for (const r of rows) this.run(r.conversation_id).catch((e: unknown) => log(e, r.conversation_id));
    return rows.length;
  }
}

function rootless(): EventContext {
  const id = `conv-${randomUUID()}`;
  return { id, parent_id: null, root_id: id, depth: 0 };
}

/** What a speaker is told: the topic on its first turn, then everything said since it last spoke. */
export function promptFor(opening: string, transcript: Utterance[], speaker: string, index: number): string {
  let since = transcript.length;
  while (since > 0 && transcript[since - 1]!.agent_id !== speaker) since--;
  const said = transcript.slice(since).map((u) => `[${u.agent_id}]: ${u.text}`);
  const first = !transcript.some((u) => u.agent_id === speaker);
  const parts: string[] = [];
  if (first) parts.push(`Conversation topic: ${opening}`);
  if (said.length) parts.push(said.join('\n\n'));
  if (index === 0) parts.push('You speak first.');
  parts.push('Your turn: answer in a few sentences.');
  return parts.join('\n\n');
}
