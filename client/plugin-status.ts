/**
 * Why a plugin is not `ok`, as a code beside the human reason: `plugin:list` and `system:health`
 * carry both, so scripts and tests branch on the code, never on the text. Codes are never reused.
 */
export const PLUGIN_REASON_CODES = {
  DISABLED: 'Listed in `daemon.disabled_plugins`; not loaded (status `stopped`).',
  LOAD_FAILED: "Importing the plugin's module threw (a syntax error, a missing package).",
  INVALID_DEFINITION: 'The default export is not a valid `definePlugin({...})`, or its name does not match its folder.',
  NAMESPACE_TAKEN: 'A namespace it declares already belongs to the kernel or to another plugin.',
  EVENT_CONFLICT: 'One of its events could not be registered (already handled elsewhere).',
  DEPENDENCY_MISSING: 'A plugin named in `dependsOn` is not installed (or disabled).',
  DEPENDENCY_CYCLE: 'Its `dependsOn` chain leads back to itself.',
  DEPENDENCY_FAILED: 'A plugin named in `dependsOn` failed, so this one was not started.',
  CONFIG_INVALID: 'Its config section does not match its `configSchema`.',
  START_FAILED: '`start()` threw.',
  START_TIMEOUT: '`start()` did not finish within `daemon.plugin_start_timeout_ms`.',
  BACKEND_UNAVAILABLE: 'Degraded: a backend it needs (Docker, Neo4j, NATS, a model API) is unreachable.',
  NOT_CONFIGURED: 'Degraded: something it needs is not configured (an API key, an image).',
  DEGRADED: 'Degraded for a reason the plugin describes only in text.',
} as const;

export type PluginReasonCode = keyof typeof PLUGIN_REASON_CODES;

export type PluginStatus = 'ok' | 'degraded' | 'failed' | 'stopped' | 'loading';
