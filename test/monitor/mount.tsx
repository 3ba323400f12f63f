/** The monitor app rendered against a client (ink-testing-library), with its text frame and a waiter. */
import React from 'react';
import { render } from 'ink-testing-library';
import type { EventClient } from '../../client/index.js';
import { App } from '../../interfaces/monitor/app.js';
import { ThemeContext, plainTheme } from '../../interfaces/monitor/theme.js';
import { stripAnsi, waitUntil } from './helpers.js';

export function mountApp(
  client: EventClient,
  opts: { props?: Partial<React.ComponentProps<typeof App>>; waitMs?: number } = {},
) {
  const r = render(
    <ThemeContext.Provider value={plainTheme}>
      <App client={client} fastMs={50} slowMs={200} pollMs={200} {...opts.props} />
    </ThemeContext.Provider>,
  );
  const frame = (): string => stripAnsi(r.lastFrame() ?? '');
  const until = (ok: (f: string) => boolean, what: string, ms = opts.waitMs ?? 8000): Promise<string> =>
    waitUntil(frame, ok, ms, what);
  return { ...r, frame, until };
}
