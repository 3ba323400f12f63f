/**
 * Coalesces text deltas into completion:token events. The API can send a delta every few characters;
 * one event each would flood every subscriber (and the TUI), so deltas are gathered for a short window
 * or up to a size, whichever comes first. Order is kept; nothing is lost: `end()` flushes the rest
 * before the result is emitted.
 */
export class TokenCoalescer {
  private buf = '';
  private timer: NodeJS.Timeout | null = null;
  private index = 0;

  constructor(
    private readonly emit: (index: number, text: string) => void,
    private readonly windowMs: number,
    private readonly maxChars: number,
  ) {}

  push(delta: string): void {
    if (delta.length === 0) return;
    this.buf += delta;
    if (this.buf.length >= this.maxChars) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.windowMs);
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.buf.length === 0) return;
    const text = this.buf;
    this.buf = '';
    this.emit(this.index++, text);
  }

  /** Flush what is left and stop; later pushes are ignored. */
  end(): void {
    this.flush();
    this.push = () => undefined;
  }

  get chunks(): number {
    return this.index;
  }
}
