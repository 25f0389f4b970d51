import { isUtf8 } from 'node:buffer';

/**
 * Checks a byte stream for UTF-8 chunk by chunk. A character split across
 * two chunks is carried over, so chunk boundaries never cause false alarms.
 */
export class Utf8Checker {
  private carry: Buffer = Buffer.alloc(0);
  private offset = 0;

  /**
   * Returns the bytes of `chunk` that are complete, valid UTF-8 (holding back
   * an unfinished character), or the file offset of the first invalid byte.
   */
  push(chunk: Buffer): { valid: Buffer; invalidAt?: number } {
    const bytes =
      this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const cut = bytes.length - incompleteTail(bytes);
    const complete = bytes.subarray(0, cut);
    if (isUtf8(complete)) {
      this.carry = Buffer.from(bytes.subarray(cut));
      this.offset += complete.length;

      return { valid: complete };
    }
    const bad = firstInvalidUtf8(complete);

    return { valid: complete.subarray(0, bad), invalidAt: this.offset + bad };
  }

  /** At the end of the stream: the offset of a truncated last character. */
  end(): number | undefined {
    return this.carry.length > 0 ? this.offset : undefined;
  }
}

/** How many bytes at the end start a character that is not finished. */
function incompleteTail(bytes: Buffer): number {
  const last = Math.max(0, bytes.length - 3);
  for (let i = bytes.length - 1; i >= last; i--) {
    const byte = bytes[i];
    if (byte < 0x80) return 0;
    if (byte >= 0xc0) {
      const need = sequenceLength(byte);

      return need > bytes.length - i ? bytes.length - i : 0;
    }
  }

  return 0;
}

function sequenceLength(lead: number): number {
  if (lead >= 0xf0) return 4;
  if (lead >= 0xe0) return 3;

  return 2;
}

/** Index of the first byte that is not part of a valid UTF-8 character. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i];
    if (lead < 0x80) {
      i += 1;
      continue;
    }
    if (lead < 0xc2 || lead > 0xf4) return i;
    const length = sequenceLength(lead);
    if (i + length > bytes.length) return i;
    if (!isUtf8(bytes.subarray(i, i + length))) return i;
    i += length;
  }

  return bytes.length;
}
