/**
 * Lint: typescript-eslint with type information, so that floating promises are found by the
 * TypeScript checker itself. Only rules that catch bugs or enforce the architecture; layout is
 * Prettier's (`npm run format`).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';
import { pluginImports } from './scripts/lint/plugin-imports.js';

const root = path.dirname(fileURLToPath(import.meta.url));

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'var/**',
      '.cache/**',
      '.build/**',
      'dist/**',
      'scratch/**',
      '.scratch/**',
      '.neo4j/**',
      '**/*.d.ts',
    ],
  },
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, agentd: { rules: { 'plugin-imports': pluginImports } } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A promise nobody awaits, returns, catches or marks with `void` loses its rejection.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      // Unused code: tsconfig's noUnusedLocals/noUnusedParameters see the rest.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'none',
          ignoreRestSiblings: true,
        },
      ],
      'no-unreachable': 'error',
      // The one door: plugins see the plugin API and client/, never kernel internals or each other.
      'agentd/plugin-imports': ['error', { repoRoot: root }],
    },
  },
);
