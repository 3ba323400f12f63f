/**
 * Colours, or none: NO_COLOR (https://no-color.org) set to anything non-empty turns every colour
 * off. Bold, dim and inverse stay, and nothing depends on colour alone (focus has a double border
 * and a marker, states have words).
 */
import { createContext, useContext } from 'react';

export type Tone = 'ok' | 'warn' | 'bad' | 'info' | 'muted' | 'accent';

export interface Theme {
  color: (tone: Tone) => string | undefined;
}

const COLORS: Record<Tone, string> = {
  ok: 'green',
  warn: 'yellow',
  bad: 'red',
  info: 'cyan',
  muted: 'gray',
  accent: 'magenta',
};

export const colorTheme: Theme = { color: (t) => COLORS[t] };
export const plainTheme: Theme = { color: () => undefined };

export function themeFromEnv(env: NodeJS.ProcessEnv = process.env): Theme {
  return env.NO_COLOR ? plainTheme : colorTheme;
}

export const ThemeContext = createContext<Theme>(colorTheme);
export const useTheme = (): Theme => useContext(ThemeContext);

/** The tone of a plugin or daemon status word. */
export function statusTone(status: unknown): Tone {
  switch (status) {
    case 'ok':
    case 'healthy':
    case 'running':
    case 'completed':
    case 'idle':
      return 'ok';
    case 'degraded':
    case 'queued':
    case 'loading':
    case 'shutting_down':
    case 'cancelled':
      return 'warn';
    case 'failed':
    case 'unhealthy':
    case 'stopped':
    case 'error':
    case 'terminated':
      return 'bad';
    default:
      return 'muted';
  }
}

/** Budget gauge tone: the plugin warns at 50/75/90 %. */
export function percentTone(p: number): Tone {
  return p >= 90 ? 'bad' : p >= 75 ? 'warn' : p >= 50 ? 'info' : 'ok';
}
