/**
 * Reads exact byte counts from a stream of chunks, holding at most one
 * partly used chunk besides the caller's target.
 */
export class ByteReader {
  /** Bytes handed out so far. */
  position = 0;
  private readonly iterator: AsyncIterator<unknown>;
  private pending: Buffer | undefined;
  private ended = false;

  constructor(source: AsyncIterable<unknown>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Fills `target`; returns how many bytes came (fewer only at the end). */
  async readInto(target: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < target.length) {
      const chunk = this.pending ?? (await this.pull());
      if (!chunk) {
        break;
      }
      const n = Math.min(chunk.length, target.length - filled);
      target.set(chunk.subarray(0, n), filled);
      filled += n;
      this.pending = n < chunk.length ? chunk.subarray(n) : undefined;
    }
    this.position += filled;

    return filled;
  }

  /** Whether the stream has no byte left. */
  async atEnd(): Promise<boolean> {
    this.pending ??= await this.pull();

    return this.pending === undefined;
  }

  /** Stops reading and releases the stream. */
  async close(): Promise<void> {
    this.pending = undefined;
    if (!this.ended) {
      this.ended = true;
      await this.iterator.return?.();
    }
  }

  private async pull(): Promise<Buffer | undefined> {
    while (!this.ended) {
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;

        return undefined;
      }
      const value = next.value;
      const chunk = Buffer.isBuffer(value)
        ? value
        : Buffer.from(value as Uint8Array);
      if (chunk.length > 0) {
        return chunk;
      }
    }

    return undefined;
  }
}
