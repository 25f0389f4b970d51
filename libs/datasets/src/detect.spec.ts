import { describe, expect, it } from 'vitest';

import { detectFormat, sniffDelimited } from './detect';

const bytes = (text: string) => Buffer.from(text);

describe('detectFormat', () => {
  it('tells formats apart by their first bytes', () => {
    expect(detectFormat(bytes('PAR1\u0000\u0000'))).toBe('parquet');
    expect(detectFormat(bytes('PK\u0003\u0004rest'))).toBe('images');
    expect(detectFormat(bytes('\ufeff  {"a": 1}\n'))).toBe('jsonl');
    expect(detectFormat(bytes('a,b\n1,2\n'))).toBe('csv');
    expect(detectFormat(bytes('a\tb\n1\t2\n'))).toBe('tsv');
    expect(detectFormat(bytes('a\n1\n'), 'data.TSV')).toBe('tsv');
  });

  it('refuses gzip and JSON arrays with a way out', () => {
    expect(() => detectFormat(Buffer.from([0x1f, 0x8b, 8, 0]))).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_FORMAT' }),
    );
    expect(() => detectFormat(bytes('[{"a": 1}]'))).toThrow(/JSON Lines/);
  });
});

describe('sniffDelimited', () => {
  it('ignores delimiters inside quotes', () => {
    const text = 'name;note\n"a";"x, y, z"\n"b";"p, q"\n';

    expect(sniffDelimited(bytes(text))).toEqual({
      delimiter: ';',
      hasHeader: true,
    });
  });

  it('finds a header above numbers and none above more numbers', () => {
    expect(sniffDelimited(bytes('x|y\n1|2\n3|4\n')).hasHeader).toBe(true);
    expect(sniffDelimited(bytes('5|6\n1|2\n3|4\n')).hasHeader).toBe(false);
  });

  it('assumes a header when every column is text', () => {
    expect(sniffDelimited(bytes('a,b\nc,d\n')).hasHeader).toBe(true);
  });
});
