/** Errors reaching a web client are always typed: anything else becomes HANDLER_ERROR. */
import { DaemonError, isErrorCode } from '../../client/errors.js';

export function toDaemonError(e: unknown): DaemonError {
  if (e instanceof DaemonError) return e;
  // A plugin reloaded in a fresh module graph has its own DaemonError class: same shape, other identity.
  if (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'DaemonError' &&
    isErrorCode((e as { code?: unknown }).code)
  ) {
    const x = e as DaemonError;
    return new DaemonError(x.code, x.message, x.details);
  }
  return new DaemonError('HANDLER_ERROR', e instanceof Error ? e.message : String(e));
}
