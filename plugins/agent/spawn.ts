/**
 * Spawning an agent: its profile, limits (defaults, profile, request, bounded by caps), tools, budget
 * (an agent-scope limit in the budget plugin), and, for a child, the parent's caps on children,
 * every ancestor's cap on depth, the parent's tools and what the parent has left to spend.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { DaemonError, type EventContext, type GroupCommit, type PluginContext } from '../../daemon/plugin-api.js';
import { limitsSchema, type AgentConfig, type Limits } from './config.js';
import { checkMcpTools, covers, type AgentTool } from './mcp-tools.js';
import type { ProfileStore } from './profiles.js';
import type { SpawnInput } from './schemas.js';
import type { AgentRow, AgentStore } from './store.js';

export interface SpawnDeps {
  store: AgentStore;
  gc: GroupCommit;
  config: AgentConfig;
  profiles: ProfileStore;
  log: Logger;
  request: PluginContext['request'];
  emit: PluginContext['emit'];
  /** The agent, which must exist and be live. */
  live(id: string): AgentRow;
  view(a: AgentRow): Record<string, unknown>;
}

export async function spawnAgent(
  s: SpawnDeps,
  input: SpawnInput,
  context: EventContext,
): Promise<Record<string, unknown>> {
  const cfg = s.config;
  const profile = input.profile !== undefined ? s.profiles.get(input.profile) : undefined;
  if (input.profile !== undefined && !profile) {
    const known = s.profiles.list().map((p) => p.name);
    throw new DaemonError('NOT_FOUND', `no profile "${input.profile}" (known: ${known.join(', ') || 'none'})`, {
      profile: input.profile,
      profiles: known,
    });
  }
  const agentId = input.agent_id ?? `agent-${randomUUID().slice(0, 8)}`;
  if (s.store.agent(agentId))
    throw new DaemonError('CONFLICT', `agent ${agentId} already exists`, { agent_id: agentId });
  if (s.store.liveCount() >= cfg.max_agents)
    throw new DaemonError('OVERLOADED', `${cfg.max_agents} agents are live (agent.max_agents); terminate some first`);

  let tools = [...new Set(input.tools ?? profile?.tools ?? [])] as AgentTool[];
  const merged = { ...cfg.defaults, ...profile?.limits, ...input.limits };
  const limits = limitsSchema.parse(
    Object.fromEntries(Object.entries(merged).map(([k, v]) => [k, Math.min(v as number, cfg.caps[k as keyof Limits])])),
  );
  let budget = input.budget_usd ?? profile?.budget_usd ?? null;
  let depth = 0;
  const parent = input.parent_id !== undefined ? s.live(input.parent_id) : null;
  if (parent) {
    checkParent(s.store, parent, agentId);
    depth = parent.depth + 1;
    const extra = tools.filter((t) => !covers(parent.tools, t));
    // Tools named in the request must all be the parent's; a profile's are narrowed to them.
    if (input.tools === undefined) tools = tools.filter((t) => covers(parent.tools, t));
    else if (extra.length)
      throw new DaemonError(
        'CONFLICT',
        `a child may only have tools its parent has; ${parent.agent_id} lacks ${extra.join(', ')}`,
        { tools: extra },
      );
    // A child never gets more to spend than its parent has left.
    const left = parent.budget_usd !== null ? await remainingUsd(s, parent.agent_id, context) : null;
    if (left !== null) budget = budget === null ? left : Math.min(budget, left);
    if (budget !== null && budget <= 0)
      throw new DaemonError('BUDGET_EXCEEDED', `parent ${parent.agent_id} has no budget left for a child`, {
        agent_id: parent.agent_id,
      });
  }
  // MCP servers must be configured (and named tools usable) before anything is written.
  const toolWarnings = await checkMcpTools(tools, s.request, context, agentId);
  const model = input.model ?? profile?.model ?? cfg.default_model ?? '';
  if (budget !== null) {
    await s.request('budget:set', { scope: 'agent', id: agentId, limit_usd: budget }, { context, agentId });
  }
  const row = {
    agent_id: agentId,
    profile: profile?.name ?? null,
    model,
    system: input.system ?? profile?.system ?? '',
    tools,
    limits,
    budget_usd: budget,
    metadata: input.metadata ?? null,
    parent_id: parent?.agent_id ?? null,
    depth,
    stream: input.stream ?? false,
    created_at: Date.now(),
  };
  try {
    await s.gc.run(() => {
      // Checked again inside the write: concurrent spawns must not exceed a cap together.
      if (s.store.agent(agentId))
        throw new DaemonError('CONFLICT', `agent ${agentId} already exists`, { agent_id: agentId });
      if (parent) checkParent(s.store, s.store.agent(parent.agent_id)!, agentId);
      s.store.insertAgent(row);
    });
  } catch (e) {
    // Only a clash on the agent's id is a conflict; anything else is a fault, reported as such.
    if (e instanceof DaemonError || (e as { code?: string }).code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw e;
    throw new DaemonError('CONFLICT', `agent ${agentId} already exists`, { agent_id: agentId });
  }
  const view = s.view(s.store.agent(agentId)!);
  s.emit(
    'agent:spawned',
    {
      agent_id: agentId,
      profile: row.profile,
      model: view.model,
      tools,
      parent_id: row.parent_id,
      depth,
      budget_usd: budget,
    },
    { context, agentId },
  );
  s.log.info({ agent_id: agentId, profile: row.profile, parent_id: row.parent_id }, 'agent spawned');
  return toolWarnings.length ? { ...view, tool_warnings: toolWarnings } : view;
}

export function checkParent(store: AgentStore, parent: AgentRow, childId: string): void {
  if (parent.status === 'terminated')
    throw new DaemonError('CONFLICT', `agent ${parent.agent_id} is terminated`, { agent_id: parent.agent_id });
  const n = store.liveChildren(parent.agent_id);
  if (n >= parent.limits.max_children) {
    throw new DaemonError(
      'CONFLICT',
      `agent ${parent.agent_id} has ${n} live children, its limit (max_children ${parent.limits.max_children})`,
      {
        agent_id: parent.agent_id,
        cap: 'max_children',
        limit: parent.limits.max_children,
        child: childId,
      },
    );
  }
  // Every ancestor's max_depth bounds how deep its line may go.
  const depth = parent.depth + 1;
  for (
    let a: AgentRow | undefined = parent, i = 0;
    a && i < 128;
    a = a.parent_id ? store.agent(a.parent_id) : undefined, i++
  ) {
    if (depth - a.depth > a.limits.max_depth) {
      throw new DaemonError(
        'CONFLICT',
        `spawning ${childId} would put a descendant ${depth - a.depth} levels below ${a.agent_id} (max_depth ${a.limits.max_depth})`,
        {
          agent_id: a.agent_id,
          cap: 'max_depth',
          limit: a.limits.max_depth,
        },
      );
    }
  }
}

async function remainingUsd(s: SpawnDeps, agentId: string, context: EventContext): Promise<number | null> {
  const r = await s.request<{ scopes: Array<{ remaining_usd?: number | null }> }>(
    'budget:status',
    { scope: 'agent', id: agentId },
    { context, agentId },
  );
  const left = r.scopes.map((s) => s.remaining_usd).filter((v): v is number => typeof v === 'number');
  return left.length ? Math.min(...left) : null;
}
