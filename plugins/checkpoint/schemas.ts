/** Schemas of the checkpoint plugin's config section and events. */
import { z } from 'zod';

export const configSchema = z.object({
  interval_ms: z.coerce.number().int().min(0).default(30_000).register(z.globalRegistry, {
    description:
      'How often to take a checkpoint when some plugin marked its state dirty; 0 disables periodic checkpoints',
  }),
  keep: z.coerce.number().int().min(1).max(10_000).default(10).register(z.globalRegistry, {
    description: 'Unlabelled checkpoints kept (the newest); labelled ones are kept until deleted',
  }),
  max_pending: z.coerce.number().int().min(1).max(10_000).default(32).register(z.globalRegistry, {
    description: 'Saves and restores that may wait behind the running one; more answer OVERLOADED',
  }),
  fallback_depth: z.coerce.number().int().min(1).max(10_000).default(50).register(z.globalRegistry, {
    description: 'At start, how many checkpoints (newest first) may be searched for an intact part per plugin',
  }),
  snapshot_timeout_ms: z.coerce
    .number()
    .int()
    .min(100)
    .default(10_000)
    .register(z.globalRegistry, { description: "Time allowed for collecting every plugin's snapshot" }),
  full_keep: z.coerce.number().int().min(1).max(1000).default(5).register(z.globalRegistry, {
    description:
      'Full checkpoints kept, labelled ones included; the oldest unlabelled go first, and a save that would need a labelled one to go is refused',
  }),
  full_max_bytes: z.coerce
    .number()
    .int()
    .min(1024 * 1024)
    .default(10 * 1024 ** 3)
    .register(z.globalRegistry, {
      description: 'Bytes all full checkpoints may take on disk together, same rule as full_keep',
    }),
  restore_stop_timeout_ms: z.coerce.number().int().min(100).default(30_000).register(z.globalRegistry, {
    description:
      'A full restore stops the plugins it rolls back as shutdown does: time their work in flight gets to finish or be handed over',
  }),
  lock_timeout_ms: z.coerce.number().int().min(100).default(30_000).register(z.globalRegistry, {
    description:
      'How long a full restore waits for a database another process holds locked before it gives up (it is finished at the next start)',
  }),
  copy_pages_per_step: z.coerce.number().int().min(16).max(1_000_000).default(1024).register(z.globalRegistry, {
    description:
      'Pages a full save copies per event-loop turn (4 KiB each): smaller keeps the daemon more responsive during the copy, larger copies faster',
  }),
});
export type CheckpointConfig = z.infer<typeof configSchema>;

export const saveSchema = z.object({
  label: z.string().min(1).max(200).optional().register(z.globalRegistry, {
    description: 'A name for this checkpoint; labelled checkpoints are exempt from retention',
  }),
  scope: z.enum(['state', 'full']).default('state').register(z.globalRegistry, {
    description:
      "state: the plugins' in-memory snapshots (as the periodic checkpoints); full: also a consistent copy of agents, conversations, the graph, runs — what checkpoint:restore rolls back and checkpoint:fork branches from",
  }),
});

export const diffSchema = z.object({
  from: z
    .number()
    .int()
    .positive()
    .register(z.globalRegistry, { description: 'A full checkpoint (see checkpoint:list)' }),
  to: z
    .number()
    .int()
    .positive()
    .optional()
    .register(z.globalRegistry, { description: 'Another full checkpoint; absent: the live state now' }),
  limit: z.number().int().min(0).max(10_000).default(100).register(z.globalRegistry, {
    description: 'At most this many ids listed per kind and change (the counts are always complete)',
  }),
});

export const forkSchema = z.object({
  checkpoint_id: z
    .number()
    .int()
    .positive()
    .register(z.globalRegistry, { description: 'The full checkpoint to branch from' }),
  home: z.string().min(1).max(4096).register(z.globalRegistry, {
    description: 'Absolute path of the new AGENTD_HOME: must not exist, or be an empty directory of yours',
  }),
});

export const listSchema = z.object({
  limit: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(50)
    .register(z.globalRegistry, { description: 'At most this many, newest first' }),
  labelled_only: z
    .boolean()
    .default(false)
    .register(z.globalRegistry, { description: 'Only checkpoints that have a label' }),
});

export const statusSchema = z.object({}).register(z.globalRegistry, { description: 'No parameters' });

export const restoreSchema = z.object({
  checkpoint_id: z.number().int().positive().register(z.globalRegistry, {
    description: 'The checkpoint to restore into the running plugins (see checkpoint:list)',
  }),
});

export const deleteSchema = z.object({
  checkpoint_id: z
    .number()
    .int()
    .positive()
    .register(z.globalRegistry, { description: 'The checkpoint to delete (labelled ones are only removed this way)' }),
});

// Answers. Loose objects: fields may be added, never removed or retyped.
const checkpointOut = z.looseObject({
  id: z.number().int(),
  parent_id: z.number().int().nullable(),
  label: z.string().nullable(),
  reason: z.string(),
  created_at: z.number(),
});
export const responses = {
  save: z.looseObject({
    checkpoint_id: z.number().int(),
    parent_id: z.number().int().nullable(),
    complete: z.boolean(),
    errors: z.record(z.string(), z.string()),
  }),
  list: z.looseObject({
    checkpoints: z.array(checkpointOut),
    total: z.number().int(),
    labelled: z.number().int(),
    head_id: z.number().int().nullable(),
  }),
  status: z.looseObject({}),
  restore: z.looseObject({ checkpoint_id: z.number().int() }),
  delete: z.looseObject({ deleted: z.number().int() }),
  diff: z.looseObject({}),
  fork: z.looseObject({}),
};
