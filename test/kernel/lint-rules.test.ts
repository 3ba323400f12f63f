/** The lint rule that keeps plugins behind the one door: daemon/plugin-api and client/, never another plugin. */
import path from 'node:path';
import { Linter } from 'eslint';
import { describe, expect, it } from 'vitest';
import { pluginImports } from '../../scripts/lint/plugin-imports.js';

const root = '/repo';
const linter = new Linter({ configType: 'flat', cwd: root });
const lint = (file: string, code: string): string[] =>
  linter
    .verify(
      code,
      [
        {
          files: ['**/*.ts'],
          plugins: { agentd: { rules: { 'plugin-imports': pluginImports } } },
          rules: { 'agentd/plugin-imports': ['error', { repoRoot: root }] },
        },
      ],
      path.join(root, file),
    )
    .map((m) => m.messageId ?? m.message);

describe('agentd/plugin-imports', () => {
  it.each([
    ['plugins/kg/index.ts', "import { definePlugin } from '../../daemon/plugin-api.js';", []],
    ['plugins/kg/index.ts', "import { DaemonError } from '../../client/errors.js';", []],
    ['plugins/kg/index.ts', "import { KgService } from './service.js';", []],
    ['plugins/completion/providers/anthropic.ts', "import { x } from '../service.js';", []],
    ['plugins/kg/index.ts', "import { z } from 'zod';", []],
    ['plugins/kg/index.ts', "import { GroupCommit } from '../../daemon/group-commit.js';", ['kernel']],
    ['plugins/kg/index.ts', "import { Router } from '../../daemon/router.js';", ['kernel']],
    ['plugins/kg/index.ts', "import { ledger } from '../budget/ledger.js';", ['otherPlugin']],
    ['plugins/completion/providers/anthropic.ts', "import { x } from '../../agent/service.js';", ['otherPlugin']],
    ['plugins/kg/index.ts', "export * from '../sandbox/index.js';", ['otherPlugin']],
    ['plugins/kg/index.ts', "const m = import('../../daemon/kernel.js');", ['kernel']],
    ['examples/plugins/notes/index.ts', "import { definePlugin } from '../../../daemon/plugin-api.js';", []],
    ['examples/plugins/notes/index.ts', "import { byCodePoint } from '../../../daemon/text-order.js';", ['kernel']],
    ['daemon/kernel.ts', "import { Router } from './router.js';", []],
  ])('%s: %s', (file, code, expected) => {
    expect(lint(file, code)).toEqual(expected);
  });
});
