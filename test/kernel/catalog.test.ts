import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../client/errors.js';
import { ROOT } from '../helpers/daemon-process.js';

const catalog = fs.readFileSync(path.join(ROOT, 'EVENT_CATALOG.md'), 'utf8');

describe('EVENT_CATALOG.md', () => {
  it.each(Object.keys(ERROR_CODES))('documents error code %s', (code) => {
    expect(catalog).toMatch(new RegExp(`\\| \`${code}\` \\| (yes|no) \\| .+ \\|`));
  });
  it.each(['system:ping', 'system:health', 'system:discover', 'system:help', 'system:shutdown', 'monitor:subscribe', 'monitor:unsubscribe', 'monitor:events', 'plugin:list', 'plugin:reload'])('documents kernel event %s', (ev) => {
    expect(catalog).toContain(`### \`${ev}\``);
  });
});
