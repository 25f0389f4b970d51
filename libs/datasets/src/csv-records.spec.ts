import { Readable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { readDelimited } from './csv-reader';
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
    for await (const batch of table.batches) {
      batch.rows.forEach((row, i) => rows.push([batch.rowNumbers[i], row]));
    }

    return { columns: table.columns, rows, problems: report.build().problems };
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;

    return { error: error.toProblem(), problems: report.build().problems };
  }
}

function generated(seed: number, quoteFrom: number): Buffer {
  const random = seededRandom(seed);
  const words = ['a', 'bé', '€uro', '', ' ', '12.5', '-3', 'x y'];
  const lines = ['\ufeffid,name,value'];
  for (let i = 0; i < 400; i++) {
    const fields = [String(i), words[i % words.length], String(random())];
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

        expect(fast, `seed ${seed}, quotes from ${quoteFrom}`).toEqual(slow);
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

    expect(fast.rows).toEqual([
      [1, ['1', '2']],
      [2, ['3', '4']],
    ]);
  });
});
