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
  it.each([
    'system:ping',
    'system:health',
    'system:discover',
    'system:help',
    'system:shutdown',
    'monitor:subscribe',
    'monitor:unsubscribe',
    'monitor:events',
    'plugin:list',
    'plugin:reload',
  ])('documents kernel event %s', (ev) => {
    expect(catalog).toContain(`### \`${ev}\``);
  });
});

describe('schema descriptions', () => {
  // zod's .describe() returns a described clone; on a chain that has just built a fresh schema the
  // clone is pure waste, and ~370 of them cost 30-40 ms of every start. Fresh chains register their
  // description in place (.register(z.globalRegistry, {description})); .describe() stays for shared
  // schemas (a named constant described differently where it is used), where the clone is the point.
  it("agentd's own schemas describe fresh chains in place, not with .describe()", () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts')) {
          fs.readFileSync(p, 'utf8')
            .split('\n')
            .forEach((line, i) => {
              if (/\)\s*\.describe\(/.test(line) || /^\s*\.describe\(/.test(line))
                offenders.push(`${path.relative(ROOT, p)}:${i + 1}`);
            });
        }
      }
    };
    walk(path.join(ROOT, 'daemon'));
    walk(path.join(ROOT, 'plugins'));
    expect(offenders).toEqual([]);
  });
});
