/**
 * The guide's example plugin (examples/plugins/notes), loaded the way a user's own plugins are:
 * from an extra directory named in `daemon.plugin_dirs`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EventFrame } from '../../client/protocol.js';
import { ROOT, startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';

const others = fs.readdirSync(path.join(ROOT, 'plugins'));
let d: DaemonHandle;

beforeAll(async () => {
  d = await startDaemon({
    config: `daemon:\n  plugin_dirs: [${JSON.stringify(path.join(ROOT, 'examples', 'plugins'))}]\n  disabled_plugins: ${JSON.stringify(others)}\nnotes:\n  max_notes: 3\n`,
  });
}, 120_000);
afterAll(async () => {
  expect(await d?.stop()).toBe(0);
});

describe('the example plugin from an extra plugin directory', () => {
  it('loads and serves: add, get, list by tag, its event and its listener', async () => {
    const { plugins } = await d.client.request<{
      plugins: Array<{ name: string; status: string; details?: Record<string, unknown> }>;
    }>('plugin:list');
    expect(plugins.find((p) => p.name === 'notes')).toMatchObject({ status: 'ok', details: { notes: 0 } });
    const events: EventFrame[] = [];
    await d.client.subscribe(['notes:*'], (ev) => void events.push(ev));
    const a = await d.client.request<{ id: string; text: string; tags: string[] }>('notes:add', {
      text: 'read the guide',
      tags: ['docs'],
    });
    expect(a).toMatchObject({ text: 'read the guide', tags: ['docs'] });
    await d.client.request('notes:add', { text: 'write a plugin' });
    expect(await d.client.request('notes:get', { id: a.id })).toEqual(a);
    const docs = await d.client.request<{ notes: Array<{ id: string }> }>('notes:list', { tag: 'docs' });
    expect(docs.notes.map((n) => n.id)).toEqual([a.id]);
    await vi.waitFor(() => expect(events.map((e) => e.event)).toEqual(['notes:added', 'notes:added']));
    await vi.waitFor(async () => expect(await d.client.request('notes:list', {})).toMatchObject({ seen: 2 }));
  });

  it('answers with coded errors: NOT_FOUND, INVALID_DATA, CONFLICT at notes.max_notes', async () => {
    await expect(d.client.request('notes:get', { id: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(d.client.request('notes:add', { text: '' })).rejects.toMatchObject({ code: 'INVALID_DATA' });
    await expect(d.client.request('notes:add', { text: 'x', tags: ['Not OK'] })).rejects.toMatchObject({
      code: 'INVALID_DATA',
    });
    await d.client.request('notes:add', { text: 'third' });
    await expect(d.client.request('notes:add', { text: 'fourth' })).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
