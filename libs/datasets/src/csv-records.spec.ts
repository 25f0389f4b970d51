import { Readable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { readDelimited } from './csv-reader';
import { fieldOf } from './csv-records';
import type { DatasetInput } from './input';
import { DatasetError } from './problems';
import { seededRandom } from './random';
import { ReportBuilder } from './report-builder';
import { DEFAULT_LIMITS } from './table';

/** An input that hands out the bytes in chunks of random sizes. */
function choppedInput(
  bytes: Buffer,
  seed: number,
  maxChunk: number,
): DatasetInput {
  return {
    open: () => {
      const random = seededRandom(seed);
      let offset = 0;

      return new Readable({
        read() {
          if (offset >= bytes.length) {
            this.push(null);

            return;
          }
          const size = 1 + Math.floor(random() * maxChunk);
          this.push(bytes.subarray(offset, offset + size));
          offset += size;
        },
      });
    },
  };
}

async function readWith(input: DatasetInput, fastUnquoted: boolean) {
  const report = new ReportBuilder();
  try {
    const table = await readDelimited(
      input,
      { format: 'csv', delimiter: ',', hasHeader: true },
      { limits: DEFAULT_LIMITS, report, fastUnquoted },
    );
    const rows: unknown[] = [];
    let numbers = 0;
    for await (const batch of table.batches) {
      batch.rows.forEach((row, i) => {
        // The fast path gives plain decimals as numbers; their text must be
        // exactly what csv-parse gives.
        const text = row.map((cell) => {
          if (typeof cell !== 'number') return cell;
          numbers += 1;

          return String(cell);
        });
        rows.push([batch.rowNumbers[i], text]);
      });
    }

    return {
      columns: table.columns,
      rows,
      problems: report.build().problems,
      numbers: fastUnquoted ? undefined : numbers,
      fastNumbers: fastUnquoted ? numbers : undefined,
    };
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;

    return { error: error.toProblem(), problems: report.build().problems };
  }
}

function generated(seed: number, quoteFrom: number): Buffer {
  const random = seededRandom(seed);
  const words = [
    ...['a', 'bé', '€uro', '', ' ', '12.5', '-3', 'x y', '007', '1.50'],
    ...['-0', '.5', '5.', '1e5', '0.0000001', '0.000001', '-', '0', '0.0'],
    ...['123456789012345', '1234567890123456', '-0.25', '99999.99999', 'NaN'],
  ];
  const lines = ['\ufeffid,name,value,rounded'];
  for (let i = 0; i < 400; i++) {
    const fields = [
      String(i),
      words[i % words.length],
      String(random()),
      (random() * 2000 - 1000).toFixed(i % 5),
    ];
    if (i >= quoteFrom && i % 7 === 0) fields[1] = '"q, ""r""\nline"';
    if (i % 53 === 0) fields.push('extra');
    lines.push(fields.join(','));
    if (i % 61 === 0) lines.push('');
  }

  return Buffer.from(lines.join(seed % 2 === 0 ? '\r\n' : '\n'));
}

describe('delimitedRecords', () => {
  it('splits unquoted lines exactly as csv-parse does', async () => {
    for (const seed of [1, 2, 3, 4]) {
      for (const quoteFrom of [0, 250, 1000]) {
        const bytes = generated(seed, quoteFrom);
        const input = choppedInput(bytes, seed, 300);
        const slow = await readWith(input, false);
        const fast = await readWith(input, true);

        const { fastNumbers, ...fastRest } = fast;
        const { numbers, ...slowRest } = slow;

        expect(numbers).toBe(0);
        if (quoteFrom > 0) expect(fastNumbers).toBeGreaterThan(100);
        expect(fastRest, `seed ${seed}, quotes from ${quoteFrom}`).toEqual(
          slowRest,
        );
        expect(slow.rows?.length).toBeGreaterThan(390);
      }
    }
  });

  it('places errors on the same row and line either way', async () => {
    const cases = [
      Buffer.concat([
        Buffer.from('a,b\n1,2\n3,4\n5,'),
        Buffer.from([0xff]),
        Buffer.from('\n'),
      ]),
      Buffer.from('a,b\n1,2\n3,4\n5,"open\n6,7\n'),
      Buffer.from('a,b\n1,2\n"3",4\n5,x"y\n'),
      Buffer.from(`a,b\n1,2\n3,${'z'.repeat(2 * 1024 * 1024)}\n`),
      Buffer.from(`a,b\n1,2\n3,"${'z'.repeat(2 * 1024 * 1024)}"\n`),
      // Completes inside one chunk after a carried start under the limit.
      Buffer.from(`a,b\n1,2\n3,${'z'.repeat(1024 * 1024 + 10)}\n4,5\n`),
    ];
    for (const [i, bytes] of cases.entries()) {
      const input = choppedInput(bytes, i, 50_000);
      const slow = await readWith(input, false);
      const fast = await readWith(input, true);

      expect(slow.error, `case ${i}`).toBeDefined();
      expect(fast, `case ${i}`).toEqual(slow);
    }
  });

  it('leaves files with bare CR line ends to csv-parse', async () => {
    const bytes = Buffer.from('a,b\r1,2\r3,4\r');
    const fast = await readWith(choppedInput(bytes, 1, 5), true);

    expect(fast).toMatchObject({
      fastNumbers: 0,
      rows: [
        [1, ['1', '2']],
        [2, ['3', '4']],
      ],
    });
  });

  it('reads plain decimals as numbers and keeps every other spelling as text', () => {
    const read = (text: string) => fieldOf(text, 0, text.length);

    expect(
      ['0', '7', '-12.5', '0.25', '0.000001', '123456789012345'].map(read),
    ).toEqual([0, 7, -12.5, 0.25, 0.000001, 123456789012345]);
    const kept = ['007', '1.50', '-0', '.5', '5.', '1e5', '+1', '0.0000001'];
    expect(kept.map(read)).toEqual(kept);
    expect(read('1234567890123456')).toBe('1234567890123456');
  });

  it('gives numbers that equal Number(text) and print back as the text', () => {
    const random = seededRandom(11);
    let numbers = 0;
    for (let i = 0; i < 20_000; i++) {
      const digits = (n: number) =>
        Array.from({ length: n }, () => Math.floor(random() * 10)).join('');
      const whole = digits(1 + Math.floor(random() * 9));
      const part = digits(Math.floor(random() * 9));
      const text = `${random() < 0.3 ? '-' : ''}${whole}${part ? `.${part}` : ''}`;
      const value = fieldOf(text, 0, text.length);
      if (typeof value === 'number') {
        numbers += 1;
        expect(value).toBe(Number(text));
        expect(String(value)).toBe(text);
      }
    }
    expect(numbers).toBeGreaterThan(5000);
  });
});
