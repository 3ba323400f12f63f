/**
 * The tests' chat completions server in a process of its own, for the completion benchmark's
 * OpenAI-compatible path (as messages-api-process.ts is for Anthropic's). Prints its base URL on
 * stdout, then serves until its parent goes away (bounded, like every server the benchmarks start).
 */
import { startOpenAIChatServer } from '../test/fixtures/openai-chat-server.js';

const api = await startOpenAIChatServer({ maxRecorded: 0 });
process.stdout.write(`${api.url}\n`);
const stop = (): void => void api.close().finally(() => process.exit(0));
process.on('disconnect', stop);
process.stdin.on('end', stop);
process.stdin.resume();
setTimeout(stop, 30 * 60_000).unref();
