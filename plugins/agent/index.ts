/**
 * agent: persistent agents that think with completions and act through events. Profiles (YAML,
 * hot-reloaded), spawn/send/message/list/info/terminate, tool use routed as events (sandbox, kg,
 * other agents), caps on turns, tool calls, children, depth and budget, multi-agent conversations,
 * and a journal that lets every accepted turn survive a crash.
 */
import path from 'node:path';
import { DaemonError, definePlugin } from '../../daemon/plugin-api.js';
import { configSchema, TOOL_NAMES } from './config.js';
import { Conversations } from './converse.js';
import { ProfileStore } from './profiles.js';
import {
  cancelSchema,
  conversationSchema,
  converseSchema,
  deleteSchema,
  infoSchema,
  listSchema,
  messageSchema,
  profilesSchema,
  pruneSchema,
  responses,
  sendSchema,
  spawnSchema,
  terminateSchema,
} from './schemas.js';
import { AgentService, MIGRATIONS } from './service.js';

/** The plugin's instance. */
interface Agents {
  svc: AgentService;
  conv: Conversations;
  profiles: ProfileStore;
}

/** While it stops, the plugin still answers, but takes no new work. */
function serving(agents: Agents): Agents {
  if (agents.svc.isStopping()) throw new DaemonError('SHUTTING_DOWN', 'the agent plugin is stopping');
  return agents;
}

const TURN_EVENTS = ['agent:turn_started', 'agent:tool_call', 'agent:tool_result', 'agent:reply', 'agent:error'];

export default definePlugin({
  name: 'agent',
  version: 1,
  namespaces: ['agent'],
  dependsOn: ['completion', 'budget'],
  optionalDependsOn: ['sandbox', 'kg'],
  description:
    'Persistent agents: profiles, turns with tool use routed as events, agent-to-agent messages, conversations, caps, durable journal.',
  configSchema,
  publishes: {
    'agent:spawned': 'An agent was created: {agent_id, profile, model, tools, parent_id, depth, budget_usd}.',
    'agent:turn_started':
      'An agent began (or, after a restart, resumed) a turn: {agent_id, turn_id, source: send|message|converse, from, resumed, goal?}.',
    'agent:tool_call': 'An agent called a tool: {agent_id, turn_id, tool_use_id, name, input}.',
    'agent:tool_result':
      'A tool call finished: {agent_id, turn_id, tool_use_id, name, is_error, error_code, duration_ms, result, events}; result is what the model was shown, events the events the call made in order ({event, data, result | error}), or events_omitted: true when they were too large to carry.',
    'agent:reply':
      'A turn ended with a reply: {agent_id, turn_id, text, stop_reason (end_turn, turn_limit, tool_call_limit, ...), steps, tool_calls, usage, cost_usd}.',
    'agent:error':
      'A turn failed: {agent_id, turn_id, code, message, reason, agents?}; for LOOP_DETECTED, agents is the message chain.',
    'agent:terminated': 'An agent was terminated: {agent_id, reason, cascade_from}.',
    'agent:deleted': 'A terminated agent was deleted with its history (agent:delete, agent:prune): {agent_id}.',
    'agent:utterance': 'One utterance of a conversation: {conversation_id, round, index, agent_id, text}.',
    'agent:conversation_ended': 'A conversation ended: {conversation_id, status: completed|failed, utterances, error}.',
    'agent:profile_changed':
      'A profile file was loaded, removed or found invalid (then not loaded): {file, change, name, error}.',
  },

  async start(ctx): Promise<Agents> {
    const config = ctx.config;
    ctx.migrate(MIGRATIONS);
    const dirs = [config.profiles_dir, ...config.extra_profile_dirs].map((d) => path.resolve(ctx.paths.root, d));
    const profiles = new ProfileStore(dirs, (c) => {
      ctx.log.info({ file: c.file, change: c.change, name: c.name, error: c.error }, 'profile changed');
      ctx.emit('agent:profile_changed', { ...c });
    });
    await profiles.loadAll();
    for (const bad of profiles.invalid())
      ctx.log.warn({ file: bad.file, error: bad.error }, 'invalid profile not loaded');
    // Not awaited: the watcher's first scan takes a while, and it re-reads what changed meanwhile.
    if (config.watch_profiles)
      void profiles.watch().catch((err: unknown) => ctx.log.warn({ err }, 'watching profiles failed'));
    const svc = new AgentService({ db: ctx.db, log: ctx.log, config, profiles, request: ctx.request, emit: ctx.emit });
    const conv = new Conversations(svc, (event, data, opts) => ctx.emit(event, data, opts));
    const r = svc.recover();
    const convs = conv.recover((err, id) =>
      ctx.log.warn({ err, conversation_id: id }, 'resumed conversation ended with an error'),
    );
    ctx.log.info(
      { ...r, conversations: convs, profiles: profiles.list().length, invalid_profiles: profiles.invalid().length },
      'agent started',
    );
    return { svc, conv, profiles };
  },

  async stop(agents, ctx, deadline) {
    await agents.profiles.close();
    const r = await agents.svc.stop(deadline);
    ctx.log.info(r, 'agent stopped');
  },

  health: (agents) => ({
    ...agents.svc.health(),
    profiles: agents.profiles.list().length,
    invalid_profiles: agents.profiles.invalid().length,
  }),

  // Full checkpoints roll back every agent table: agents, histories, turns, inboxes, tool calls, conversations.
  fullState: {
    tables: ['agent_*'],
    entities: { agents: { table: 'agent_agents', key: 'agent_id' }, turns: { table: 'agent_turns', key: 'turn_id' } },
  },

  events: {
    'agent:spawn': {
      summary:
        'Create an agent from a profile and/or explicit model, system, tools, limits and budget; answers the agent.',
      description: `Tools: ${TOOL_NAMES.join(', ')}. Limits come from agent.defaults, then the profile, then this request, each bounded by agent.caps. With budget_usd the budget plugin keeps an agent-scope limit. With parent_id the parent's max_children and every ancestor's max_depth apply, the child's tools must be among the parent's, and its budget is at most what the parent has left.`,
      schema: spawnSchema,
      emits: ['agent:spawned'],
      errors: ['NOT_FOUND', 'CONFLICT', 'OVERLOADED', 'BUDGET_EXCEEDED'],
      response: responses.spawn,
      handler: (d, agents, call) => serving(agents).svc.spawn(d, call.context),
    },

    'agent:send': {
      summary:
        "Give an agent a message and run one turn: model calls with the agent's history and tools, each tool_use routed as an event, until it stops or a limit is hit.",
      description:
        "The turn is journaled before the answer and survives a restart. With wait (default) the answer is {agent_id, turn_id, status, reply, stop_reason, steps, tool_calls, usage, cost_usd}, or the turn's error (BUDGET_EXCEEDED, LOOP_DETECTED, CANCELLED, ...) with details.turn_id; without, {turn_id, status: \"queued\"} at once and the outcome comes as agent:reply or agent:error. Turns of one agent run one at a time, in order. With goal, the trace plugin answers the turn from a trace of the goal when one is found (no model call; the answer's trace says which) and keeps a turn that succeeds as the goal's trace (docs/traces.md).",
      schema: sendSchema,
      emits: TURN_EVENTS,
      errors: ['NOT_FOUND', 'CONFLICT', 'OVERLOADED', 'BUDGET_EXCEEDED', 'CANCELLED', 'UNAVAILABLE', 'SHUTTING_DOWN'],
      defaultTimeoutMs: 600_000,
      response: responses.send,
      handler: (d, agents, call) => serving(agents).svc.send(d, call.context),
    },

    'agent:message': {
      summary:
        "Deliver a message from one agent to another's inbox; the receiver takes a turn on it (queued, answered at once).",
      description:
        'The receiving turn inherits the causality of the sender, so an exchange that would go on forever ends with LOOP_DETECTED (router.max_depth, or agent.max_message_hops) and an agent:error naming the agents of the chain. A repeated message_id is delivered once.',
      schema: messageSchema,
      emits: TURN_EVENTS,
      errors: ['NOT_FOUND', 'CONFLICT', 'OVERLOADED', 'LOOP_DETECTED'],
      response: responses.message,
      handler: (d, agents, call) => serving(agents).svc.message(d, call.context),
    },

    'agent:list': {
      summary:
        'Agents, newest first, with status (idle, running, terminated), profile, model, tools, limits, parent and usage.',
      schema: listSchema,
      response: responses.list,
      handler: (d, agents) => serving(agents).svc.list(d),
    },

    'agent:info': {
      summary: 'One agent: its settings, usage, budget, history (most recent), inbox, children and recent turns.',
      schema: infoSchema,
      errors: ['NOT_FOUND'],
      response: responses.info,
      handler: (d, agents, call) => serving(agents).svc.info(d, call.context),
    },

    'agent:cancel': {
      summary:
        'Cancel a turn (default: the running one): a queued turn is cancelled at once; a running one stops at its next step, its model call and tool call in flight abandoned. The agent stays live.',
      description:
        'Answers {agent_id, turn_id, cancelled, status}: status cancelled (it was queued), cancelling (it was running; its agent:send answers CANCELLED and agent:error follows), or the state of a turn that had already ended (cancelled: false).',
      schema: cancelSchema,
      emits: ['agent:error'],
      errors: ['NOT_FOUND'],
      response: responses.cancel,
      handler: (d, agents, call) => serving(agents).svc.cancel(d, call.context),
    },

    'agent:terminate': {
      summary:
        'Terminate an agent (and with cascade its descendants): queued turns are cancelled, a running one stops at its next step.',
      description:
        'Terminating a terminated agent answers already_terminated: true. Its history stays readable through agent:info.',
      schema: terminateSchema,
      emits: ['agent:terminated'],
      errors: ['NOT_FOUND'],
      response: responses.terminate,
      handler: (d, agents, call) => serving(agents).svc.terminate(d, call.context),
    },

    'agent:delete': {
      summary:
        'Delete a terminated agent with its history, turns, tool calls and inbox (its spend stays in the budget ledger).',
      description:
        'A live agent is CONFLICT (terminate it first), as is one whose children are live. Answers {agent_id, deleted: true, messages, turns}.',
      schema: deleteSchema,
      emits: ['agent:deleted'],
      errors: ['NOT_FOUND', 'CONFLICT'],
      response: responses.delete,
      handler: (d, agents) => serving(agents).svc.delete(d.agent_id),
    },

    'agent:prune': {
      summary:
        'Delete every terminated agent (terminated at least older_than_s ago) as agent:delete would: {deleted: [ids], kept: [{agent_id, reason}]}.',
      schema: pruneSchema,
      emits: ['agent:deleted'],
      response: responses.prune,
      handler: (d, agents) => serving(agents).svc.prune(d.older_than_s),
    },

    'agent:profiles': {
      summary:
        'The loaded profiles (name, file, model, tools, limits, budget) and the invalid files with the reason each was not loaded.',
      schema: profilesSchema,
      response: responses.profiles,
      handler(_d, agents) {
        const p = serving(agents).profiles;
        return {
          profiles: p.list().map((x) => ({
            name: x.name,
            description: x.description ?? null,
            file: x.file,
            model: x.model ?? null,
            tools: x.tools,
            limits: x.limits,
            budget_usd: x.budget_usd ?? null,
            system: x.system,
          })),
          invalid: p.invalid(),
        };
      },
    },

    'agent:converse': {
      summary:
        'Run a multi-agent conversation: agents (or agents spawned from profiles) speak in turn on the opening topic for a number of rounds.',
      description:
        'Each utterance is emitted as agent:utterance while it happens; the answer is {conversation_id, status, agents, rounds, transcript}. Journaled: a restart resumes it. Agents spawned from profiles are terminated at the end unless keep_agents.',
      schema: converseSchema,
      emits: ['agent:spawned', 'agent:utterance', 'agent:conversation_ended', ...TURN_EVENTS],
      errors: ['NOT_FOUND', 'CONFLICT', 'BUDGET_EXCEEDED', 'LOOP_DETECTED', 'OVERLOADED'],
      defaultTimeoutMs: 1_800_000,
      response: responses.converse,
      handler: (d, agents, call) => serving(agents).conv.start(d, call.context),
    },

    'agent:conversation': {
      summary:
        "A conversation's state and transcript so far (also after a restart, or when the converse caller went away).",
      schema: conversationSchema,
      errors: ['NOT_FOUND'],
      response: responses.conversation,
      handler: (d, agents) => serving(agents).conv.get(d.conversation_id),
    },
  },
});
