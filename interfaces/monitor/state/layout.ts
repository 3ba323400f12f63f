/**
 * Where everything goes for a terminal of `columns` × `rows`: pure, so resizing is just a new
 * call. 80×24 is the design size; taller terminals give most extra rows to the event log.
 */
export interface Layout {
  columns: number;
  /** Rows the app draws: one less than the terminal so Ink updates in place instead of clearing. */
  height: number;
  /** Height of the panel row with health, agents, completions (0: hidden on tiny terminals). */
  top: number;
  /** Height of the panel row with budget, sandbox, knowledge graph (0: hidden). */
  middle: number;
  /** Height of the Workflows panel, full width above the log (0: hidden, the terminal is short). */
  flow: number;
  /** Height of the event log box. */
  log: number;
  /** Widths of the three panel columns. */
  widths: [number, number, number];
}

export const PANELS = ['health', 'agents', 'completions', 'budget', 'sandbox', 'kg', 'workflows', 'log'] as const;
export type PanelId = (typeof PANELS)[number];

export function computeLayout(columns: number, rows: number): Layout {
  const c = Math.max(40, columns || 80);
  const height = Math.max(8, (rows || 24) - 1);
  const body = height - 2; // header line and help line
  let top = 0;
  let middle = 0;
  if (body >= 19) {
    const extra = body - 21;
    top = 7 + Math.max(0, Math.min(5, Math.floor(extra / 4)));
    middle = 5 + Math.max(0, Math.min(3, Math.floor(extra / 6)));
  } else if (body >= 12) {
    top = 6;
  }
  // The Workflows panel takes rows from the log once the log would still keep at least 6.
  const flow = body >= 27 ? 6 + Math.min(6, Math.floor((body - 27) / 5)) : 0;
  const log = body - top - middle - flow;
  const w = Math.floor(c / 3);
  return { columns: c, height, top, middle, flow, log, widths: [w, w, c - 2 * w] };
}

/** Panels that can take focus in this layout, in tab order. */
export function focusable(l: Layout): PanelId[] {
  return PANELS.filter((p) => {
    if (p === 'log') return true;
    if (p === 'health' || p === 'agents' || p === 'completions') return l.top > 0;
    if (p === 'workflows') return l.flow > 0;
    return l.middle > 0;
  });
}
