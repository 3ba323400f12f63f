import React from 'react';
import { Box, Text } from 'ink';
import { useTheme } from '../theme.js';
import { fit } from '../state/format.js';

export interface PanelProps {
  title: string;
  /** Short text at the right of the title (counts, state). */
  note?: string;
  width: number;
  height: number;
  focused: boolean;
  children?: React.ReactNode;
}

/**
 * A bordered box whose title sits in the top border, so a 5-row panel still has 3 rows of content.
 * The focused panel has a double border and a ▶ marker: visible without colour.
 */
export function Panel({ title, note, width, height, focused, children }: PanelProps): React.JSX.Element {
  const theme = useTheme();
  const [h, tl, tr] = focused ? ['═', '╔', '╗'] : ['─', '╭', '╮'];
  const label = ` ${focused ? '▶ ' : ''}${title} `;
  const right = note ? ` ${note} ` : '';
  const inner = Math.max(0, width - 2);
  const titleText = fit(label, Math.max(0, inner - 1));
  const noteText = fit(right, Math.max(0, inner - 1 - titleText.length));
  const fill = Math.max(0, inner - 1 - titleText.length - noteText.length);
  const borderColor = focused ? theme.color('accent') : theme.color('muted');
  return (
    <Box flexDirection="column" width={width} height={height}>
      <Text wrap="truncate">
        <Text color={borderColor}>{tl + h}</Text>
        <Text bold={focused}>{titleText}</Text>
        <Text color={borderColor}>{h.repeat(fill)}</Text>
        <Text dimColor>{noteText}</Text>
        <Text color={borderColor}>{tr}</Text>
      </Text>
      {/* Remounted when focus changes: Ink re-applies every border edge when borderStyle changes,
          and the missing top border would come back as an empty row. */}
      <Box
        key={focused ? 'focused' : 'plain'}
        flexDirection="column"
        width={width}
        height={Math.max(1, height - 1)}
        borderStyle={focused ? 'double' : 'round'}
        borderTop={false}
        borderColor={borderColor}
        overflow="hidden"
      >
        {children}
      </Box>
    </Box>
  );
}

/** One content line, cut to the panel's width; the selected one is inverse and marked. */
export function Line({
  children,
  selected = false,
  tone,
  dim = false,
}: {
  children: React.ReactNode;
  selected?: boolean;
  tone?: string;
  dim?: boolean;
}): React.JSX.Element {
  return (
    <Text wrap="truncate" inverse={selected} color={tone} dimColor={dim}>
      {children}
    </Text>
  );
}

/** The window of `items` that keeps `selected` visible in `rows` lines. */
export function windowOf<T>(items: T[], selected: number, rows: number): { start: number; items: T[] } {
  if (rows <= 0) return { start: 0, items: [] };
  const start = Math.max(0, Math.min(selected - rows + 1, items.length - rows));
  const s = Math.max(0, Math.min(start, selected));
  return { start: s, items: items.slice(s, s + rows) };
}
