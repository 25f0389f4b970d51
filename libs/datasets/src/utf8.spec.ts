import { describe, expect, it } from 'vitest';

import { firstInvalidUtf8, Utf8Checker } from './utf8';

describe('Utf8Checker', () => {
  it('carries a character split across chunks', () => {
    const text = Buffer.from('añb€c😀d');
    const checker = new Utf8Checker();
    const parts: Buffer[] = [];
    for (let i = 0; i < text.length; i++) {
      const { valid, invalidAt } = checker.push(text.subarray(i, i + 1));
      expect(invalidAt).toBeUndefined();
      parts.push(valid);
    }

    expect(checker.end()).toBeUndefined();
    expect(Buffer.concat(parts).toString()).toBe('añb€c😀d');
  });

  it('gives the file offset of the first bad byte', () => {
    const checker = new Utf8Checker();
    checker.push(Buffer.from('abc'));
    const { valid, invalidAt } = checker.push(Buffer.from([0x64, 0xc3, 0x28]));

    expect(invalidAt).toBe(4);
    expect(valid.toString()).toBe('d');
  });

  it('reports a file that ends inside a character', () => {
    const checker = new Utf8Checker();
    checker.push(Buffer.from([0x61, 0xe2, 0x82]));

    expect(checker.end()).toBe(1);
  });

  it('rejects overlong and surrogate encodings', () => {
    expect(firstInvalidUtf8(Buffer.from([0x41, 0xc0, 0x80]))).toBe(1);
    expect(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBe(0);
  });
});
