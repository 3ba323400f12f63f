/**
 * Where the kg tests find the test Neo4j (started by scripts/neo4j.sh start):
 *   NEO4J_TEST_URI       default bolt://127.0.0.1:7687
 *   NEO4J_TEST_USER      default neo4j
 *   NEO4J_TEST_PASSWORD  default agentd-test-password (the script's default)
 * Unreachable: suites skip with a one-line reason, except in CI (CI=true), where they fail.
 */
import neo4j, { type Driver } from 'neo4j-driver';
import { IN_CI } from '../helpers/daemon-process.js';

export const NEO4J_TEST = {
  uri: process.env.NEO4J_TEST_URI ?? 'bolt://127.0.0.1:7687',
  user: process.env.NEO4J_TEST_USER ?? 'neo4j',
  password: process.env.NEO4J_TEST_PASSWORD ?? 'agentd-test-password',
};

export { IN_CI };

export function testDriver(): Driver {
  return neo4j.driver(NEO4J_TEST.uri, neo4j.auth.basic(NEO4J_TEST.user, NEO4J_TEST.password), {
    disableLosslessIntegers: true,
    connectionTimeout: 2000,
    maxTransactionRetryTime: 2000,
    logging: { level: 'error', logger: () => undefined },
  });
}

/** null when reachable, else the reason (printed once by the caller). */
export async function neo4jUnreachable(): Promise<string | null> {
  const d = testDriver();
  try {
    await d.verifyConnectivity();
    return null;
  } catch (e) {
    return `neo4j not reachable at ${NEO4J_TEST.uri} (${(e as Error).message.split('\n')[0]}); start it with scripts/neo4j.sh start`;
  } finally {
    await d.close();
  }
}

/** Call once per file at top level: decides run/skip/fail for the Neo4j part of a suite. */
export async function neo4jGate(suite: string): Promise<{ run: boolean; reason: string | null }> {
  const reason = await neo4jUnreachable();
  if (reason && !IN_CI) console.warn(`[${suite}] skipping Neo4j cases: ${reason}`);
  return { run: reason === null || IN_CI, reason };
}
