/**
 * completion: LLM calls as queued, journaled, budgeted work. `completion:async` answers at once and
 * the result arrives as an event; `completion:request` waits for it. Conversations (`conversation:*`)
 * keep each session's history in SQLite.
 */
import { DaemonError, definePlugin } from '../../daemon/plugin-api.js';
import { configSchema } from './config.js';
import { exportConversation } from './export.js';
import { MIGRATIONS } from './journal.js';
import { Providers } from './providers/registry.js';
import {
  cancelSchema,
  completionInput,
  conversationExportSchema,
  conversationGetSchema,
  conversationListSchema,
  modelsSchema,
  responses,
  statusSchema,
} from './schemas.js';
import { CompletionService } from './service.js';

/** The plugin's instance: the service and its hourly journal pruning. */
interface Completion {
  svc: CompletionService;
  pruner: NodeJS.Timeout;
}

export default definePlugin({
  name: 'completion',
  version: 1,
  namespaces: ['completion', 'conversation'],
  dependsOn: ['budget'],
  description:
    'LLM completions (Anthropic via @anthropic-ai/sdk, OpenAI-compatible APIs via openai): per-session FIFO queues, durable journal, budgeted calls, fallbacks, conversations.',
  configSchema,
  publishes: {
    'completion:started': 'A request left the queue and its provider call begins (attempt 2 after a restart retry).',
    'completion:token': 'Coalesced text deltas of a request made with stream: true.',
    'completion:result':
      'A request completed: text, content blocks, stop_reason, usage with cache tokens, cost_usd, price_known, model and provider (the one that answered), fallback_from, duration_ms.',
    'completion:error':
      'A request failed: {code, message, retryable, reason?} (reason daemon_restart when a crash interrupted it).',
    'completion:cancelled': 'A request was cancelled while queued or running; its budget reservation was released.',
    'completion:fallback':
      'A model of an alias failed (unreachable, overloaded or 5xx after its retries) before answering; the next one is asked.',
  },

  async start(ctx): Promise<Completion> {
    const config = ctx.config;
    ctx.migrate(MIGRATIONS);
    const providers = await Providers.create(config, process.env, ctx.log);
    const svc = new CompletionService({
      db: ctx.db,
      log: ctx.log,
      config,
      providers,
      request: (event, data, opts) => ctx.request(event, data, opts),
      emit: (event, data, opts) => ctx.emit(event, data, opts),
      shuttingDown: () => ctx.shuttingDown,
    });
    const ps = svc.defaultStatus();
    if (!ps.configured) ctx.setStatus('degraded', ps.reason, 'NOT_CONFIGURED');
    const r = await svc.recover();
    ctx.log.info(
      {
        ...r,
        providers: Object.keys(providers.states()),
        configured: ps.configured,
        max_concurrency: config.max_concurrency,
      },
      'completion started',
    );
    const pruner = setInterval(() => {
      try {
        svc.prune();
      } catch (err) {
        ctx.log.error({ err }, 'journal prune failed');
      }
    }, 3600_000);
    pruner.unref();
    return { svc, pruner };
  },

  subscriptions: {
    // Other plugins may stop before this one; no new call should start in the meantime.
    'system:shutdown_begin': (_ev, { svc }) => svc.pause(),
  },

  async stop({ svc, pruner }, ctx, deadline) {
    clearInterval(pruner);
    const r = await svc.stop(deadline);
    ctx.log.info(r, 'completion stopped');
  },

  // Conversations roll back with a full checkpoint; the request journal does not (what was paid for stays recorded).
  fullState: {
    tables: ['completion_conversations', 'completion_messages'],
    kept: {
      tables: ['completion_requests'],
      reason:
        'the journal of calls made and their outcomes: what was paid for stays recorded, and a call asked again with its request_id gets the recorded outcome instead of being paid twice',
    },
    entities: { conversations: { table: 'completion_conversations', key: 'session_id' } },
  },

  health({ svc }) {
    const q = svc.queues();
    return { queued: q.queued, running: q.running, provider: q.provider, providers: svc.providerHealth() };
  },

  events: {
    'completion:async': {
      summary:
        'Queue a completion; answers {request_id, status: "queued", position} at once, the result comes as completion:result.',
      description:
        'The request is journaled before the answer, so it survives a crash. Give prompt or messages. position is the place within its session (1 = next).',
      schema: completionInput,
      emits: ['completion:started', 'completion:token', 'completion:result', 'completion:error'],
      errors: ['CONFLICT', 'UNAVAILABLE', 'BUDGET_EXCEEDED', 'OVERLOADED', 'SHUTTING_DOWN'],
      response: responses.async,
      queued: true,
      handler: (d, { svc }, call) => svc.accept(d, call.context),
    },

    'completion:request': {
      summary: 'The same call as completion:async, but the answer is the result (or the error).',
      description:
        'The request keeps running if the caller times out or disconnects; ask completion:status {request_id} later. Resending the same request with the same request_id (also after a daemon restart) waits for the call already queued or running, or returns the recorded outcome: it is never paid for twice.',
      schema: completionInput,
      emits: ['completion:started', 'completion:token', 'completion:result', 'completion:error'],
      errors: [
        'CONFLICT',
        'UNAVAILABLE',
        'BUDGET_EXCEEDED',
        'OVERLOADED',
        'SHUTTING_DOWN',
        'CANCELLED',
        'INVALID_DATA',
        'TIMEOUT',
      ],
      defaultTimeoutMs: 900_000,
      response: responses.request,
      async handler(d, { svc }, call) {
        const { request_id } = await svc.accept(d, call.context, false);
        return svc.outcome(request_id);
      },
    },

    'completion:cancel': {
      summary:
        'Cancel a request: a queued one is removed, a running one is aborted (SDK abort signal); its reservation is released.',
      schema: cancelSchema,
      emits: ['completion:cancelled'],
      errors: ['NOT_FOUND', 'CONFLICT'],
      response: responses.cancel,
      handler: (d, { svc }) => svc.cancel(d.request_id),
    },

    'completion:status': {
      summary:
        "With request_id: that request's state (queued|running|completed|failed|cancelled) and outcome, across restarts. Without: the queues.",
      schema: statusSchema,
      errors: ['NOT_FOUND'],
      response: responses.status,
      handler: (d, { svc }) => (d.request_id ? svc.requestStatus(d.request_id) : svc.queues()),
    },

    'completion:models': {
      summary:
        'The default model and the model aliases in force: {default_model, aliases: {name: {model, fallbacks}}} (the shipped ones merged with completion.models).',
      schema: modelsSchema,
      response: responses.models,
      handler: (_d, { svc }) => svc.models(),
    },

    'conversation:list': {
      summary: 'Conversations (sessions) with their turn counts, most recently updated first.',
      schema: conversationListSchema,
      response: responses.conversationList,
      handler(d, { svc }) {
        const rows = svc.journal.listConversations(d);
        return { conversations: rows, next_before: rows.length === d.limit ? rows[rows.length - 1]!.updated_at : null };
      },
    },

    'conversation:get': {
      summary: "A conversation's messages in order (user turns and the assistant's content blocks).",
      schema: conversationGetSchema,
      errors: ['NOT_FOUND'],
      response: responses.conversationGet,
      handler(d, { svc }) {
        const j = svc.journal;
        const c = j.conversation(d.session_id);
        if (!c) throw new DaemonError('NOT_FOUND', `no conversation ${d.session_id}`, { session_id: d.session_id });
        return { ...c, messages: j.messages(d.session_id) };
      },
    },

    'conversation:export': {
      summary: 'A conversation as markdown or JSON text.',
      schema: conversationExportSchema,
      errors: ['NOT_FOUND'],
      response: responses.conversationExport,
      handler(d, { svc }) {
        const j = svc.journal;
        const c = j.conversation(d.session_id);
        if (!c) throw new DaemonError('NOT_FOUND', `no conversation ${d.session_id}`, { session_id: d.session_id });
        return {
          session_id: d.session_id,
          format: d.format,
          content: exportConversation(c, j.messages(d.session_id), d.format),
        };
      },
    },

    'conversation:delete': {
      summary: 'Delete a conversation and its history (refused while one of its requests is queued or running).',
      schema: conversationGetSchema,
      errors: ['NOT_FOUND', 'CONFLICT'],
      response: responses.conversationDelete,
      handler(d, { svc }) {
        const q = svc.queues() as { sessions: Array<{ session_id: string }> };
        if (q.sessions.some((s) => s.session_id === d.session_id)) {
          throw new DaemonError(
            'CONFLICT',
            `conversation ${d.session_id} has requests queued or running; cancel them first`,
            { session_id: d.session_id },
          );
        }
        if (!svc.journal.deleteConversation(d.session_id))
          throw new DaemonError('NOT_FOUND', `no conversation ${d.session_id}`, { session_id: d.session_id });
        return { session_id: d.session_id, deleted: true };
      },
    },
  },
});
