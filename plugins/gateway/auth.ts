/**
 * Bearer-token auth. The token comes from config (AGENTD_GATEWAY_TOKEN) or a file created 0600
 * under the run directory and kept across restarts. Comparison is in constant time over digests,
 * so neither the content nor the length of the token leaks through timing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface TokenSource {
  token: string;
  /** Where it came from: config/environment, or the file (generated now or earlier). */
  source: 'config' | 'file';
  file: string | null;
}

export function resolveToken(configured: string | undefined, file: string): TokenSource {
  if (configured) return { token: configured, source: 'config', file: null };
  try {
    const existing = fs.readFileSync(file, 'utf8').trim();
    if (existing.length >= 16) {
      // A file others can read is a token others may have: tighten it, as the socket is.
      fs.chmodSync(file, 0o600);
      return { token: existing, source: 'file', file };
    }
  } catch {
    /* none yet */
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, token + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
  return { token, source: 'file', file };
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Checks presented credentials against one token without timing leaks. */
export class TokenCheck {
  private readonly expected: Buffer;
  constructor(token: string) {
    this.expected = digest(token);
  }

  matches(presented: string | undefined | null): boolean {
    return timingSafeEqual(digest(presented ?? ''), this.expected) && presented !== undefined && presented !== null;
  }

  /** `Authorization: Bearer <token>`. */
  header(value: string | undefined): boolean {
    const m = value ? /^Bearer[ ]+(\S+)\s*$/i.exec(value) : null;
    return this.matches(m ? m[1] : null);
  }

  /**
   * A browser's WebSocket cannot set headers; it may offer the token as a subprotocol
   * `agentd.bearer.<token>` instead (sent in a header, never in the URL).
   */
  subprotocol(value: string | undefined): string | null {
    for (const p of (value ?? '').split(',').map((x) => x.trim())) {
      if (p.startsWith(BEARER_PROTOCOL) && this.matches(p.slice(BEARER_PROTOCOL.length))) return p;
    }
    return null;
  }
}

export const BEARER_PROTOCOL = 'agentd.bearer.';
