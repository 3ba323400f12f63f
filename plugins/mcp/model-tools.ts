/**
 * How an MCP server's tools look to a model: the name `<server>__<tool>`, the input schema exactly
 * as the server declares it, and the checks a model API makes on both. A tool that would make the
 * provider refuse the whole request is reported (with why) instead of being sent or quietly dropped.
 */

/** What the Anthropic and OpenAI APIs accept as a tool name (the stricter of the two). */
export const MODEL_TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

export const modelToolName = (server: string, tool: string): string => `${server}__${tool}`;

/** `<server>__<tool>` back to its parts; null when the name has no `__`. */
export function splitModelToolName(name: string): { server: string; tool: string } | null {
  const i = name.indexOf('__');
  if (i <= 0 || i + 2 >= name.length) return null;
  return { server: name.slice(0, i), tool: name.slice(i + 2) };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why a model API would refuse this tool, or null when it would take it. */
export function providerProblem(modelName: string, inputSchema: unknown): string | null {
  if (!MODEL_TOOL_NAME_RE.test(modelName)) {
    return `the name the model would see, "${modelName}", is not 1-64 letters, digits, _ or - (model APIs refuse it)`;
  }
  if (!isObject(inputSchema)) return 'its input schema is not a JSON object';
  if (inputSchema.type !== 'object')
    return `its input schema's type is ${JSON.stringify(inputSchema.type ?? null)}, not "object" (model APIs require an object)`;
  for (const k of ['oneOf', 'anyOf', 'allOf']) {
    if (k in inputSchema) return `its input schema has ${k} at the top level (model APIs refuse it)`;
  }
  return null;
}
