/**
 * checkpoint: every stateful plugin's snapshot in one SQLite transaction — periodically while
 * something changed, on demand, and at shutdown after every other plugin stopped — and the newest
 * intact checkpoint restored at start, before any other plugin serves. Early plugin: the kernel
 * starts it first and stops it last.
 */
import { definePlugin } from '../../daemon/plugin-api.js';
import { configSchema, deleteSchema, listSchema, restoreSchema, saveSchema, statusSchema } from './schemas.js';
import { CheckpointService } from './service.js';

export default definePlugin({
  name: 'checkpoint',
  version: 1,
  namespaces: ['checkpoint'],
  early: true,
  description: 'Checkpoints of every stateful plugin in SQLite: periodic when dirty, on demand, at shutdown; restored at start.',
  configSchema,
  publishes: {
    'checkpoint:saved': 'A checkpoint was written: `{checkpoint_id, parent_id, label, reason: manual|periodic|shutdown|restore, plugins, errors, complete, size_bytes, duration_ms, write_ms, pruned}`. `errors` names plugins whose snapshot failed (left out).',
    'checkpoint:restored': 'A checkpoint was restored: at boot `{live: false, checkpoint_id, boot_id, restored: {plugin: checkpoint_id}, fallbacks, skipped, corrupt}`; live `{live: true, checkpoint_id, restored, skipped, checkpoint_after}`.',
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
      summary: 'Take a checkpoint of every stateful plugin now; answers when it is durable (fsynced).',
      description: 'Concurrent saves are serialised: each gets its own checkpoint, in arrival order, each the parent of the next. A plugin whose snapshot fails is left out and named in `errors` (`complete: false`); the checkpoint is still taken.',
      schema: saveSchema,
      emits: ['checkpoint:saved'],
      errors: ['OVERLOADED', 'UNAVAILABLE'],
      defaultTimeoutMs: 60_000,
      async handler({ label }, checkpoints) {
        return (await checkpoints.save({ label: label ?? null, reason: 'manual' }))!;
      },
    },
    'checkpoint:list': {
      summary: 'Retained checkpoints, newest first: id, parent (lineage), label, reason, age, size, duration, plugins, errors.',
      schema: listSchema,
      handler: ({ limit, labelled_only }, checkpoints) => checkpoints.list(limit, labelled_only),
    },
    'checkpoint:status': {
      summary: 'The newest checkpoint (id, age, size, duration), the lineage head, counts, what was restored at boot and what was skipped or corrupt.',
      schema: statusSchema,
      handler: (_d, checkpoints) => checkpoints.status(),
    },
    'checkpoint:restore': {
      summary: 'Restore a checkpoint into the running plugins (each plugin\'s restore()), then checkpoint the result.',
      description: 'Plugins whose part is damaged or of another version are skipped and named. Refused during shutdown. The restored checkpoint becomes the parent of the next one.',
      schema: restoreSchema,
      emits: ['checkpoint:restored', 'checkpoint:saved'],
      errors: ['NOT_FOUND', 'SHUTTING_DOWN', 'CONFLICT', 'OVERLOADED'],
      defaultTimeoutMs: 60_000,
      handler: ({ checkpoint_id }, checkpoints) => checkpoints.restore(checkpoint_id),
    },
    'checkpoint:delete': {
      summary: 'Delete one checkpoint, labelled or not (retention never removes labelled ones).',
      schema: deleteSchema,
      errors: ['NOT_FOUND', 'OVERLOADED'],
      handler: ({ checkpoint_id }, checkpoints) => checkpoints.delete(checkpoint_id),
    },
  },
});
