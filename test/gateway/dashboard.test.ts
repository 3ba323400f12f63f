/**
 * The web dashboard in a real browser: Debian's chromium driven by playwright-core (never a
 * downloaded browser). It loads the page with the token in the URL fragment, sees panels update
 * live after events are emitted, follows KG node clicks, shows a workflow run's DAG with step
 * states as they change, and leaves a screenshot in .cache/ (a CI artifact).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { IN_CI, ROOT } from '../helpers/daemon-process.js';
import { startGateway, type Gateway } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const present = fs.existsSync(CHROMIUM);
if (!present && IN_CI)
  throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium (apt-get install chromium)`);
if (!present) console.warn(`dashboard test skipped: no browser at ${CHROMIUM} (apt-get install chromium)`);

let g: Gateway;
let browser: BrowserContext;
let page: Page;
let profile: string;

describe.skipIf(!present)('web dashboard', () => {
  beforeAll(async () => {
    g = await startGateway({ sections: { daemon: { disabled_plugins: ['workflow'] } } });
    await g.daemon.client.request('kg:add_nodes', {
      nodes: [
        { id: 'vaswani2017', label: 'Paper', properties: { title: 'Attention Is All You Need' } },
        { id: 'attention', label: 'Concept' },
        { id: 'transformer', label: 'Method' },
      ],
    });
    await g.daemon.client.request('kg:add_edges', {
      edges: [
        { from: 'vaswani2017', to: 'attention', type: 'MENTIONS' },
        { from: 'attention', to: 'transformer', type: 'RELATES_TO' },
      ],
    });
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-chromium-'));
    // A fresh profile each run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 1600 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
  });

  afterAll(async () => {
    await browser?.close();
    await g?.daemon.stop();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  it('asks for the token when it has none, and refuses a wrong one', async () => {
    await page.goto(`${g.base}/`);
    await page.getByTestId('token-form').waitFor();
    await page.getByLabel('token').fill('wrong-token-0123456789');
    await page.getByRole('button', { name: 'open' }).click();
    await page.getByText('That token was refused.').waitFor({ timeout: 15_000 });
  });

  it('loads with the token from the URL fragment and removes it from the address bar', async () => {
    await page.goto(`${g.base}/#token=${g.token}`);
    await page
      .getByTestId('daemon-status')
      .filter({ hasText: /healthy|degraded/ })
      .waitFor({ timeout: 20_000 });
    expect(page.url()).not.toContain('token');
    await page.locator('[data-plugin="kg"] .st.ok').waitFor();
    await page.getByTestId('header').getByText('live').waitFor({ timeout: 20_000 });
  });

  it('updates live after events are emitted', async () => {
    await g.daemon.client.request('fix:emit', { n: 3, event: 'fix:rare' });
    await page.locator('[data-testid="event-log"] li[data-event="fix:rare"]').nth(2).waitFor({ timeout: 15_000 });
    await g.daemon.client.request('agent:spawn', { agent_id: 'ada', model: 'haiku', system: 'You are terse.' });
    await page.locator('[data-agent="ada"]').waitFor({ timeout: 15_000 });
    await g.daemon.client.request('kg:add_nodes', { nodes: [{ id: 'bert', label: 'Method' }] });
    await page.getByTestId('kg-counts').getByText('nodes 4').waitFor({ timeout: 15_000 });
    // The filter keeps only matching events, history included.
    await page.getByLabel('filter').fill('agent:*');
    await page.getByRole('button', { name: 'apply' }).click();
    await page.locator('[data-testid="event-log"] li[data-event="agent:spawned"]').waitFor();
    expect(await page.locator('[data-testid="event-log"] li[data-event="fix:rare"]').count()).toBe(0);
    await page.getByLabel('filter').fill('');
    await page.getByRole('button', { name: 'apply' }).click();
  });

  it('draws the graph and follows node clicks', async () => {
    const center = page.getByTestId('kg-center');
    await page.getByLabel('node id').fill('vaswani2017');
    await page.getByRole('button', { name: 'go' }).click();
    await expect.poll(() => center.textContent(), { timeout: 10_000 }).toBe('vaswani2017');
    await page.locator('[data-node-id="attention"]').click();
    await expect.poll(() => center.textContent(), { timeout: 10_000 }).toBe('attention');
    // attention's own neighbours are drawn now, transformer among them: follow it.
    await page.locator('[data-node-id="transformer"]').click();
    await expect.poll(() => center.textContent(), { timeout: 10_000 }).toBe('transformer');
    expect(await page.getByTestId('kg-trail').locator('button').allTextContents()).toEqual([
      'vaswani2017',
      'attention',
      'transformer',
    ]);
    // The trail leads back.
    await page.getByTestId('kg-trail').getByText('attention').click();
    await expect.poll(() => center.textContent()).toBe('attention');
    expect(await page.getByTestId('kg-trail').locator('button').count()).toBe(2);
  });

  it("shows a workflow run's DAG and its steps' states as they change", async () => {
    const dag = page.getByTestId('workflow-dag');
    await dag.waitFor({ timeout: 15_000 });
    expect(await dag.locator('[data-step-id]').count()).toBe(5);
    expect(await dag.locator('[data-step-id="parse"]').getAttribute('data-status')).toBe('succeeded');
    expect(await dag.locator('polyline').count()).toBe(5);
    await g.daemon.client.request('workflow:advance', { run_id: 'run-1', step: 'summarize', status: 'succeeded' });
    await expect
      .poll(() => dag.locator('[data-step-id="summarize"]').getAttribute('data-status'), { timeout: 10_000 })
      .toBe('succeeded');
    await g.daemon.client.request('workflow:advance', { run_id: 'run-1', step: 'cite', status: 'running' });
    await expect
      .poll(() => dag.locator('[data-step-id="cite"]').getAttribute('data-status'), { timeout: 10_000 })
      .toBe('running');
  });

  it('saves a screenshot as a CI artifact', async () => {
    fs.mkdirSync(path.join(ROOT, '.cache'), { recursive: true });
    const file = path.join(ROOT, '.cache', 'dashboard.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(fs.statSync(file).size).toBeGreaterThan(10_000);
  });
});
