/**
 * notes: the example plugin of docs/writing-a-plugin.md. Short text notes kept in SQLite, with a
 * config section, an instance built by `start`, typed handlers, an emitted event, a subscription,
 * coded errors and a clean stop. Load it with `daemon.plugin_dirs: [examples/plugins]`.
 */
import { z } from 'zod';
import { DaemonError, definePlugin, timeOrderedId } from '../../../daemon/plugin-api.js';
import { NoteStore } from './store.js';

const configSchema = z.object({
  max_notes: z.coerce.number().int().min(1).default(1000).describe('Refuse new notes beyond this many'),
  max_length: z.coerce.number().int().min(1).default(4000).describe('Longest note text, in characters'),
});

const note = z.object({ id: z.string(), text: z.string(), tags: z.array(z.string()), created_at: z.number() });

export default definePlugin({
  name: 'notes',
  namespaces: ['notes'],
  description: 'Short text notes in SQLite: the example plugin of docs/writing-a-plugin.md.',
  configSchema,
  publishes: { 'notes:added': 'A note was added: `{id, tags}`.' },

  // Everything the plugin holds lives in what start returns; handlers and hooks receive it.
  start(ctx) {
    ctx.migrate(NoteStore.migrations);
    const store = new NoteStore(ctx.db);
    return { store, config: ctx.config, log: ctx.log, seen: 0 };
  },

  events: {
    'notes:add': {
      summary: 'Add a note; answers it with its id.',
      schema: z.object({
        text: z.string().min(1).describe('The note'),
        tags: z
          .array(z.string().regex(/^[a-z0-9_-]+$/))
          .max(10)
          .default([])
          .describe('Lowercase tags'),
      }),
      response: note,
      emits: ['notes:added'],
      errors: ['CONFLICT', 'INVALID_DATA'],
      handler: (data, notes, call) => {
        if (data.text.length > notes.config.max_length) {
          throw new DaemonError('INVALID_DATA', `a note holds at most ${notes.config.max_length} characters`, {
            length: data.text.length,
          });
        }
        if (notes.store.count() >= notes.config.max_notes)
          throw new DaemonError('CONFLICT', `already ${notes.config.max_notes} notes (notes.max_notes)`);
        const added = notes.store.add({
          id: timeOrderedId(),
          text: data.text,
          tags: data.tags,
          created_at: Date.now() / 1000,
        });
        call.emit('notes:added', { id: added.id, tags: added.tags });
        return added;
      },
    },
    'notes:get': {
      summary: 'One note by id.',
      schema: z.object({ id: z.string().describe('As notes:add answered') }),
      response: note,
      errors: ['NOT_FOUND'],
      handler: ({ id }, notes) => {
        const found = notes.store.get(id);
        if (!found) throw new DaemonError('NOT_FOUND', `no note "${id}"`, { id });
        return found;
      },
    },
    'notes:list': {
      summary: 'Notes, newest first, optionally with a tag.',
      schema: z.object({
        tag: z.string().optional().describe('Only notes with this tag'),
        limit: z.number().int().min(1).max(500).default(50),
      }),
      response: z.object({ notes: z.array(note), seen: z.number().int() }),
      handler: ({ tag, limit }, notes) => ({ notes: notes.store.list(tag, limit), seen: notes.seen }),
    },
  },

  // Listeners get the instance too. This one counts the notes it saw added (its own events here).
  subscriptions: {
    'notes:added': (_ev, notes) => {
      notes.seen++;
    },
  },

  stop(notes) {
    notes.log.info({ notes: notes.store.count() }, 'notes stopped');
  },

  health: (notes) => ({ notes: notes.store.count() }),
});
