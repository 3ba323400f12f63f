import React from 'react';
import { Box, Text } from 'ink';
import { statusTone, useTheme } from '../theme.js';
import { compact, duration, fit } from '../state/format.js';
import type { Probe, Health } from '../hooks/use-daemon-poll.js';
import type { Connection } from '../hooks/use-event-stream.js';

export interface HeaderProps {
  health: Probe<Health>;
  connection: Connection;
  width: number;
  socket?: string;
}

/** One line: daemon status, uptime, connections, event rate (the daemon's own), seq, memory. */
export function Header({ health, connection, width }: HeaderProps): React.JSX.Element {
  const theme = useTheme();
  const h = health.data;
  if (connection !== 'live' || !h) {
    const text = connection === 'reconnecting' ? 'reconnecting…' : 'connecting…';
    return (
      <Box width={width}>
        <Text wrap="truncate">
          <Text bold>agentd </Text>
          <Text color={theme.color('warn')} bold>
            {text}
          </Text>
          {h ? (
            <Text dimColor>{fit(`  last seen: ${h.status}, pid ${h.pid ?? '?'}`, Math.max(0, width - 22))}</Text>
          ) : null}
        </Text>
      </Box>
    );
  }
  const rest = [
    `up ${duration(h.uptime_s ?? 0)}`,
    `pid ${h.pid ?? '?'}`,
    `conns ${h.connections ?? 0}`,
    `${compact(h.events?.per_s ?? 0)} ev/s`,
    `seq ${compact(h.events?.seq ?? 0)}`,
    h.memory?.rss_mb !== undefined ? `rss ${h.memory.rss_mb}MB` : '',
  ].filter(Boolean);
  return (
    <Box width={width}>
      <Text wrap="truncate">
        <Text bold>agentd </Text>
        <Text color={theme.color(statusTone(h.status))} bold>
          ● {h.status}
        </Text>
        <Text>{fit(`  ${rest.join('  ')}`, Math.max(0, width - 9 - h.status.length))}</Text>
      </Text>
    </Box>
  );
}
