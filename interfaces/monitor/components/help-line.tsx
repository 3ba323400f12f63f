import React from 'react';
import { Box, Text } from 'ink';
import { useTheme } from '../theme.js';
import { fit } from '../state/format.js';

export type Mode = 'normal' | 'filter' | 'details';

export interface HelpLineProps {
  mode: Mode;
  width: number;
  paused: boolean;
  /** The filter being edited. */
  draft: string;
  error?: string | null;
}

const KEYS_NORMAL = (paused: boolean): string =>
  `q quit  / filter  p ${paused ? 'resume' : 'pause'}  tab/←→ panel  ↑↓ select  enter details`;

/** The bottom line: the keys, or the filter being typed. */
export function HelpLine({ mode, width, paused, draft, error }: HelpLineProps): React.JSX.Element {
  const theme = useTheme();
  if (mode === 'filter') {
    const hint = error ? `  ${error}` : '  enter apply · esc cancel · empty = all';
    return (
      <Box width={width}>
        <Text wrap="truncate">
          <Text bold>filter: </Text>
          <Text>{draft}</Text>
          <Text inverse> </Text>
          <Text color={theme.color(error ? 'bad' : 'muted')}>{fit(hint, Math.max(0, width - 9 - draft.length))}</Text>
        </Text>
      </Box>
    );
  }
  const text = mode === 'details' ? 'esc/enter close  ↑↓ PgUp/PgDn scroll  q quit' : KEYS_NORMAL(paused);
  return (
    <Box width={width}>
      <Text wrap="truncate" dimColor>
        {fit(text, width)}
      </Text>
    </Box>
  );
}
