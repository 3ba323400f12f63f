import path from 'node:path';
import { ROOT, startDaemon, type DaemonOptions } from '../helpers/daemon-process.js';

export const KERNEL_TEST_PLUGINS = path.join(ROOT, 'test', 'kernel', 'plugins');
/** The real plugins stay out of kernel tests: they are tested in their own suites. */
export const REAL_PLUGINS = [
  'completion',
  'budget',
  'sandbox',
  'kg',
  'agent',
  'checkpoint',
  'bridge',
  'gateway',
  'trace',
];

export function kernelConfig(extra = '', broken = false): string {
  const disabled = [...REAL_PLUGINS, ...(broken ? [] : ['broken_start', 'broken_load', 'cycle_a', 'cycle_b'])];
  return `daemon:\n  plugin_dirs: [${JSON.stringify(KERNEL_TEST_PLUGINS)}]\n  disabled_plugins: ${JSON.stringify(disabled)}\n${extra}`;
}

export const startKernel = (opts: DaemonOptions & { extra?: string; broken?: boolean } = {}) =>
  startDaemon({ ...opts, config: opts.config ?? kernelConfig(opts.extra ?? '', opts.broken) });
