/**
 * What the chat prints: a reply's tokens as they stream, its tool calls inline as they happen, and
 * the answers to /budget, /tools and /agent. Pure formatting over a write function, so the
 * terminal loop stays small and the lines can be checked without a terminal.
 */
import type { EventFrame } from '../../client/protocol.js';

export interface Style {
  dim(s: string): string;
  tool(s: string): string;
  bad(s: string): string;
  who(s: string): string;
}

const wrap =
  (open: string, close: string) =>
  (s: string): string =>
    `\x1b[${open}m${s}\x1b[${close}m`;
export const COLOR: Style = {
  dim: wrap('2', '22'),
  tool: wrap('36', '39'),
  bad: wrap('31', '39'),
  who: wrap('1', '22'),
};
export const PLAIN: Style = { dim: (s) => s, tool: (s) => s, bad: (s) => s, who: (s) => s };

const brief = (v: unknown, max = 160): string => {
  const s = JSON.stringify(v) ?? '';
  return s.length <= max ? s : `${s.slice(0, max)}…`;
};

const usd = (n: unknown): string =>
  typeof n === 'number' ? `$${n < 0.01 && n > 0 ? n.toFixed(6) : n.toFixed(4)}` : '-';

/**
 * The live rendering of one turn. Tokens are printed as they come; a tool call starts a line of its
 * own; `finish` prints the reply only when no token of its last step was streamed (an agent that
 * was spawned without streaming).
 */
export class TurnView {
  /** Characters of the current step's text already printed. */
  private streamed = 0;
  private atLineStart = true;

  constructor(
    private readonly write: (s: string) => void,
    private readonly style: Style,
  ) {}

  private text(s: string): void {
    if (!s) return;
    this.write(s);
    this.atLineStart = s.endsWith('\n');
  }

  private line(s: string): void {
    if (!this.atLineStart) this.write('\n');
    this.write(`${s}\n`);
    this.atLineStart = true;
  }

  /** One event of the turn (already filtered to this agent and turn). */
  onEvent(ev: EventFrame): void {
    const d = ev.data;
    switch (ev.event) {
      case 'completion:token':
        this.streamed += String(d.text ?? '').length;
        this.text(String(d.text ?? ''));
        break;
      case 'agent:tool_call':
        this.line(this.style.tool(`  ⚙ ${String(d.name)} ${brief(d.input)}`));
        this.streamed = 0;
        break;
      case 'agent:tool_result':
        this.line(
          d.is_error
            ? this.style.bad(`  ✗ ${String(d.name)} ${String(d.error_code ?? 'error')} (${String(d.duration_ms)} ms)`)
            : this.style.dim(`  ✓ ${String(d.name)} (${String(d.duration_ms)} ms)`),
        );
        break;
    }
  }

  /** The turn's answer: print what streaming did not show, end the line. */
  finish(reply: string): void {
    if (this.streamed === 0 && reply) this.text(reply);
    if (!this.atLineStart) this.write('\n');
    this.atLineStart = true;
  }

  note(s: string): void {
    this.line(this.style.dim(s));
  }
}

/** Whether an event belongs to the chat's turn: its agent, and (for tokens) a model call of that turn. */
export function ofTurn(ev: EventFrame, agentId: string, turnId: string | null): boolean {
  const d = ev.data;
  if (d.agent_id !== agentId || turnId === null) return false;
  if (ev.event === 'completion:token') return typeof d.request_id === 'string' && d.request_id.startsWith(`${turnId}.`);
  return d.turn_id === turnId;
}

interface Scope {
  scope: string;
  id: string | null;
  period: string;
  spent_usd: number;
  reserved_usd?: number;
  limit_usd: number | null;
  remaining_usd?: number | null;
  percent?: number | null;
}

export function budgetLines(scopes: Scope[]): string[] {
  if (scopes.length === 0) return ['no budget scopes'];
  return scopes.map((s) => {
    const name = s.id ? `${s.scope} ${s.id}` : s.scope;
    const limit =
      s.limit_usd === null
        ? 'no limit'
        : `of ${usd(s.limit_usd)} ${s.period} (${s.percent ?? 0}%), ${usd(s.remaining_usd)} left`;
    return `${name}: spent ${usd(s.spent_usd)} ${limit}${s.reserved_usd ? `, ${usd(s.reserved_usd)} reserved` : ''}`;
  });
}

export function agentLines(a: Record<string, unknown>): string[] {
  const u = (a.usage ?? {}) as Record<string, number>;
  return [
    `agent ${String(a.agent_id)} · ${String(a.status)} · profile ${String(a.profile ?? '-')} · model ${String(a.model ?? 'default')}`,
    `turns ${u.turns ?? 0} · tool calls ${u.tool_calls ?? 0} · tokens in ${u.input_tokens ?? 0} out ${u.output_tokens ?? 0} · cost ${usd(u.cost_usd ?? 0)} · messages ${String(a.history_length ?? '-')}`,
    `resume this chat with: daemon-control chat --agent ${String(a.agent_id)}`,
  ];
}

export function toolLines(
  builtin: string[],
  mcp: Array<{ model_name: string; description: string | null }>,
  problems: string[],
): string[] {
  const out: string[] = [];
  if (builtin.length === 0 && mcp.length === 0) out.push('this agent has no tools');
  for (const t of builtin) out.push(t);
  for (const t of mcp)
    out.push(`${t.model_name}${t.description ? ` — ${t.description.split('\n')[0]!.slice(0, 80)}` : ''}`);
  return [...out, ...problems];
}
