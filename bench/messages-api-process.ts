/**
 * The tests' Messages API server in a process of its own, for the completion benchmark: the real API
 * is across a network, so both the direct SDK baseline and the daemon reach this one across a process
 * boundary, and neither shares an event loop with it. Prints its URL on stdout, then serves until its
 * parent goes away (bounded, like every server the benchmarks start).
 */
import { startMessagesApiServer } from '../test/fixtures/messages-api-server.js';

const api = await startMessagesApiServer({ maxRecorded: 0 });
process.stdout.write(`${api.url}\n`);
const stop = (): void => void api.close().finally(() => process.exit(0));
process.on('disconnect', stop);
process.stdin.on('end', stop);
process.stdin.resume();
setTimeout(stop, 30 * 60_000).unref();
