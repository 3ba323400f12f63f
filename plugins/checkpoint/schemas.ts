/** Schemas of the checkpoint plugin's config section and events. */
import { z } from 'zod';

export const configSchema = z.object({
  interval_ms: z.coerce.number().int().min(0).default(30_000)
    .register(z.globalRegistry, { description: 'How often to take a checkpoint when some plugin marked its state dirty; 0 disables periodic checkpoints' }),
  keep: z.coerce.number().int().min(1).max(10_000).default(10)
    .register(z.globalRegistry, { description: 'Unlabelled checkpoints kept (the newest); labelled ones are kept until deleted' }),
  max_pending: z.coerce.number().int().min(1).max(10_000).default(32)
    .register(z.globalRegistry, { description: 'Saves and restores that may wait behind the running one; more answer OVERLOADED' }),
  fallback_depth: z.coerce.number().int().min(1).max(10_000).default(50)
    .register(z.globalRegistry, { description: 'At start, how many checkpoints (newest first) may be searched for an intact part per plugin' }),
  snapshot_timeout_ms: z.coerce.number().int().min(100).default(10_000)
    .register(z.globalRegistry, { description: 'Time allowed for collecting every plugin\'s snapshot' }),
});
export type CheckpointConfig = z.infer<typeof configSchema>;

export const saveSchema = z.object({
  label: z.string().min(1).max(200).optional()
    .register(z.globalRegistry, { description: 'A name for this checkpoint; labelled checkpoints are exempt from retention' }),
});

export const listSchema = z.object({
  limit: z.number().int().min(1).max(1000).default(50).register(z.globalRegistry, { description: 'At most this many, newest first' }),
  labelled_only: z.boolean().default(false).register(z.globalRegistry, { description: 'Only checkpoints that have a label' }),
});

export const statusSchema = z.object({}).register(z.globalRegistry, { description: 'No parameters' });

export const restoreSchema = z.object({
  checkpoint_id: z.number().int().positive().register(z.globalRegistry, { description: 'The checkpoint to restore into the running plugins (see checkpoint:list)' }),
});

export const deleteSchema = z.object({
  checkpoint_id: z.number().int().positive().register(z.globalRegistry, { description: 'The checkpoint to delete (labelled ones are only removed this way)' }),
});

// Answers. Loose objects: fields may be added, never removed or retyped.
const checkpointOut = z.looseObject({ id: z.number().int(), parent_id: z.number().int().nullable(), label: z.string().nullable(), reason: z.string(), created_at: z.number() });
export const responses = {
  save: z.looseObject({ checkpoint_id: z.number().int(), parent_id: z.number().int().nullable(), complete: z.boolean(), errors: z.record(z.string(), z.string()) }),
  list: z.looseObject({ checkpoints: z.array(checkpointOut), total: z.number().int(), labelled: z.number().int(), head_id: z.number().int().nullable() }),
  status: z.looseObject({}),
  restore: z.looseObject({ checkpoint_id: z.number().int() }),
  delete: z.looseObject({ deleted: z.number().int() }),
};
