import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real daemons and containers: two cores, so few files at a time.
    pool: 'forks',
    maxWorkers: process.env.CI ? 2 : 3,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
