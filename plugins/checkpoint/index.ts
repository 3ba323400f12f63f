/**
 * checkpoint: every stateful plugin's snapshot in one SQLite transaction — periodically while
 * something changed, on demand, and at shutdown after every other plugin stopped — and the newest
 * intact checkpoint restored at start, before any other plugin serves. Early plugin: the kernel
 * starts it first and stops it last.
 */
import { definePlugin } from '../../daemon/plugin-api.js';
import {
  configSchema,
  deleteSchema,
  diffSchema,
  forkSchema,
  listSchema,
  responses,
  restoreSchema,
  saveSchema,
  statusSchema,
} from './schemas.js';
import { CheckpointService } from './service.js';

export default definePlugin({
  name: 'checkpoint',
  version: 1,
  namespaces: ['checkpoint'],
  early: true,
  description:
    'Checkpoints of every stateful plugin in SQLite: periodic when dirty, on demand, at shutdown; restored at start.',
  configSchema,
  publishes: {
    'checkpoint:saved':
      'A checkpoint was written: `{checkpoint_id, parent_id, label, reason: manual|periodic|shutdown|restore, scope: state|full, plugins, errors, complete, size_bytes, duration_ms, write_ms, pruned, full?}`. `errors` names plugins whose snapshot failed (left out).',
    'checkpoint:restored':
      'A checkpoint was restored: at boot `{live: false, checkpoint_id, boot_id, restored: {plugin: checkpoint_id}, fallbacks, skipped, corrupt}`; live `{live: true, checkpoint_id, restored, skipped, checkpoint_after}`, and for a full one also `{scope: "full", restarted, changes: {kind: {added, removed, changed, ids}}, kept, never_rolled_back}`.',
    'checkpoint:forked':
      'A full checkpoint was forked into a new home: `{home, checkpoint_id, origin, bytes, duration_ms, start, notes}`.',
  },

  async start(ctx) {
    const checkpoints = new CheckpointService(ctx, ctx.config);
    await checkpoints.start();
    return checkpoints;
  },

  async stop(checkpoints) {
    await checkpoints.stop();
  },

  health: (checkpoints) => checkpoints.health(),

  events: {
    'checkpoint:save': {
      summary:
        'Take a checkpoint now: the plugins\' in-memory state, or with scope "full" also a consistent copy of agents, conversations, the graph and runs, taken online; answers when it is durable (fsynced).',
      description:
        'Concurrent saves are serialised: each gets its own checkpoint, in arrival order, each the parent of the next. A plugin whose snapshot fails is left out and named in `errors` (`complete: false`); the checkpoint is still taken. A full one says what it covers per plugin and what a restore of it never rolls back (`full.kept`: spend stays spent). Full checkpoints are bounded by checkpoint.full_keep and full_max_bytes: the oldest unlabelled go first; when labelled ones leave no room the save is refused (CONFLICT).',
      schema: saveSchema,
      emits: ['checkpoint:saved'],
      errors: ['OVERLOADED', 'UNAVAILABLE', 'CONFLICT', 'SHUTTING_DOWN'],
      defaultTimeoutMs: 600_000,
      response: responses.save,
      async handler({ label, scope }, checkpoints) {
        return (await checkpoints.save({ label: label ?? null, reason: 'manual', scope }))!;
      },
    },
    'checkpoint:diff': {
      summary:
        'What differs between two full checkpoints, or one and the live state: agents, turns, conversations, nodes, edges, runs — added, removed, changed.',
      description:
        'Each kind is what a plugin declared; counts are exact, ids listed up to `limit` (`truncated` when more). A kind one side cannot show (a plugin absent, a graph in Neo4j against the live state) says why under `unavailable`.',
      schema: diffSchema,
      errors: ['NOT_FOUND', 'CONFLICT', 'OVERLOADED'],
      defaultTimeoutMs: 120_000,
      response: responses.diff,
      handler: ({ from, to, limit }, checkpoints) => checkpoints.diff(from, to, limit),
    },
    'checkpoint:fork': {
      summary:
        "A new AGENTD_HOME holding a full checkpoint's state, for a second daemon (`AGENTD_HOME=<home> daemon-control start`); the fork records its origin.",
      description:
        'The home must not exist, or be an empty directory of yours that others cannot write and that is no symlink; it is created 0700, its databases 0600. The fork starts from the checkpoint as it was saved — its budget included — and from then on counts its own spend.',
      schema: forkSchema,
      emits: ['checkpoint:forked'],
      errors: ['NOT_FOUND', 'CONFLICT', 'INVALID_DATA', 'OVERLOADED'],
      defaultTimeoutMs: 600_000,
      response: responses.fork,
      handler: ({ checkpoint_id, home }, checkpoints) => checkpoints.fork(checkpoint_id, home),
    },
    'checkpoint:list': {
      summary:
        'Retained checkpoints, newest first: id, parent (lineage), label, reason, age, size, duration, plugins, errors.',
      schema: listSchema,
      response: responses.list,
      handler: ({ limit, labelled_only }, checkpoints) => checkpoints.list(limit, labelled_only),
    },
    'checkpoint:status': {
      summary:
        'The newest checkpoint (id, age, size, duration), the lineage head, counts, what was restored at boot and what was skipped or corrupt.',
      schema: statusSchema,
      response: responses.status,
      handler: (_d, checkpoints) => checkpoints.status(),
    },
    'checkpoint:restore': {
      summary:
        'Restore a checkpoint into the running daemon, then checkpoint the result; a full one rolls back agents, conversations, the graph and runs (never spend).',
      description:
        "State checkpoint: each plugin's restore(). Full checkpoint: the plugins it covers are stopped as shutdown stops them (work in flight finishes or is handed over), their tables, files and directories put back under a journal (a crash part-way is finished at the next start: one state or the other, never a mix), and started again; the answer lists what changed and what was kept. Plugins whose part is damaged or of another version are skipped and named. Refused during shutdown. The restored checkpoint becomes the parent of the next one.",
      schema: restoreSchema,
      emits: ['checkpoint:restored', 'checkpoint:saved'],
      errors: ['NOT_FOUND', 'SHUTTING_DOWN', 'CONFLICT', 'OVERLOADED', 'UNAVAILABLE'],
      defaultTimeoutMs: 600_000,
      response: responses.restore,
      handler: ({ checkpoint_id }, checkpoints) => checkpoints.restore(checkpoint_id),
    },
    'checkpoint:delete': {
      summary:
        "Delete one checkpoint, labelled or not (retention never removes labelled ones); a full one's copy goes with it.",
      schema: deleteSchema,
      errors: ['NOT_FOUND', 'OVERLOADED', 'CONFLICT'],
      response: responses.delete,
      handler: ({ checkpoint_id }, checkpoints) => checkpoints.delete(checkpoint_id),
    },
  },
});
