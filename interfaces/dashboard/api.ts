/** Requests to the gateway with the bearer token: POST /v1/events/<event>, the answer's data or a typed error. */

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class Api {
  constructor(
    readonly base: string,
    readonly token: string,
  ) {}

  async request<T = Record<string, unknown>>(
    event: string,
    data: Record<string, unknown> = {},
    timeoutMs = 10_000,
  ): Promise<T> {
    const res = await fetch(`${this.base}/v1/events/${event}?timeout_ms=${timeoutMs}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(data),
    });
    const body = (await res.json().catch(() => ({}))) as { data?: T; error?: { code: string; message: string } };
    if (!res.ok || body.error)
      throw new ApiError(body.error?.code ?? 'HANDLER_ERROR', body.error?.message ?? `HTTP ${res.status}`, res.status);
    return body.data as T;
  }
}
