import { Readable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { inferDataset } from './infer';
import { bufferInput, type DatasetInput } from './input';
import { seededRandom } from './random';

function csv(text: string, fileName = 'data.csv') {
  return inferDataset(bufferInput(Buffer.from(text), fileName));
}

function codes(result: Awaited<ReturnType<typeof inferDataset>>) {
  return result.report.problems.map((p) => p.code);
}

describe('inferDataset on CSV', () => {
  it('infers types and statistics of known data', async () => {
    const result = await csv(
      'age,height,smoker,color,comment\n' +
        '30,1.5,true,red,first note\n' +
        '40,1.7,false,blue,second note\n' +
        '50,,true,red,third note\n' +
        '20,1.9,FALSE,red,fourth note\n',
    );

    expect(result.report).toEqual({ ok: true, problems: expect.any(Array) });
    const [age, height, smoker, color, comment] = result.schema.columns;
    expect(result.schema.rowCount).toBe(4);
    // age: 30, 40, 50, 20 -> mean 35, population variance 125.
    expect(age).toMatchObject({ name: 'age', type: 'integer' });
    expect(age.statistics).toMatchObject({
      count: 4,
      missing: 0,
      min: 20,
      max: 50,
      mean: 35,
    });
    expect(age.statistics.std).toBeCloseTo(Math.sqrt(125), 10);
    expect(height.type).toBe('numeric');
    expect(height.statistics).toMatchObject({ count: 3, missing: 1 });
    expect(height.statistics.mean).toBeCloseTo((1.5 + 1.7 + 1.9) / 3, 10);
    expect(smoker.type).toBe('boolean');
    expect(smoker.statistics.mean).toBe(0.5);
    expect(color).toMatchObject({
      type: 'categorical',
      vocabulary: ['red', 'blue'],
    });
    expect(color.statistics.top).toEqual([
      { value: 'red', count: 3 },
      { value: 'blue', count: 1 },
    ]);
    expect(comment.type).toBe('text');
    expect(result.sample[0]).toEqual({
      age: 30,
      height: 1.5,
      smoker: 'true',
      color: 'red',
      comment: 'first note',
    });
  });

  it('passes with a warning when 3% of values are missing', async () => {
    const random = seededRandom(7);
    const lines = ['x,y'];
    for (let i = 0; i < 1000; i++) {
      const x = i % 33 === 5 ? '' : (random() * 10).toFixed(3);
      lines.push(`${x},${i % 3 === 0 ? 'a' : 'b'}`);
    }
    const result = await csv(lines.join('\n'));

    expect(result.report.ok).toBe(true);
    const missing = result.report.problems.find(
      (p) => p.code === 'MISSING_VALUES',
    );
    // Rows 6, 39, 72, ... : one in 33 of 1000 rows.
    expect(missing).toMatchObject({
      severity: 'warning',
      column: 'x',
      row: 6,
      count: 31,
    });
    expect(result.schema.columns[0].statistics.missing).toBe(31);
  });

  it('counts NA, N/A and null as missing, not as text', async () => {
    const result = await csv('x,c\n1.5,a\nNA,b\nnull,N/A\n2.5,a\n#N/A,b\n');

    expect(result.report.ok).toBe(true);
    expect(result.schema.columns[0]).toMatchObject({
      type: 'numeric',
      statistics: { count: 2, missing: 3, mean: 2 },
    });
    expect(result.schema.columns[1]).toMatchObject({
      type: 'categorical',
      vocabulary: ['a', 'b'],
      statistics: { missing: 1 },
    });
  });

  it('warns when integers are too large for 32-bit float shards', async () => {
    const result = await csv('user_id,y\n90000001,1\n90000002,2\n');

    expect(result.report.ok).toBe(true);
    expect(result.report.problems[0]).toMatchObject({
      code: 'PRECISION_LOSS',
      severity: 'warning',
      column: 'user_id',
    });
  });

  it('turns a column with too many distinct values into text', async () => {
    const lines = ['id,group'];
    for (let i = 0; i < 300; i++) lines.push(`user${i},g${i % 4}`);
    const result = await inferDataset(
      bufferInput(Buffer.from(lines.join('\n'))),
      {
        maxVocabulary: 100,
      },
    );

    expect(result.schema.columns.map((c) => c.type)).toEqual([
      'text',
      'categorical',
    ]);
    expect(result.schema.columns[0].statistics.top).toBeUndefined();
    expect(result.schema.columns[1].vocabulary).toEqual([
      'g0',
      'g1',
      'g2',
      'g3',
    ]);
  });

  it('reads a TSV with a byte order mark and CRLF line ends', async () => {
    const result = await csv(
      '\ufeffa\tb\r\n1\tx\r\n2\ty\r\n3\tx\r\n',
      'data.tsv',
    );

    expect(result.settings).toMatchObject({ format: 'tsv', delimiter: '\t' });
    expect(result.schema.columns.map((c) => [c.name, c.type])).toEqual([
      ['a', 'integer'],
      ['b', 'categorical'],
    ]);
  });
});

describe('inferDataset on bad CSV', () => {
  it('reports an unterminated quote with its row', async () => {
    const result = await csv('a,b\n1,2\n3,"open\n5,6\n');

    expect(result.report.ok).toBe(false);
    expect(result.report.problems[0]).toMatchObject({
      code: 'UNTERMINATED_QUOTE',
      severity: 'error',
      row: 2,
    });
  });

  it('reports ragged rows with their rows', async () => {
    const result = await csv('a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n');

    expect(result.report.problems[0]).toMatchObject({
      code: 'RAGGED_ROW',
      row: 2,
      count: 2,
      examples: [
        { row: 2, value: '4,5' },
        { row: 4, value: '9,10,11,12' },
      ],
    });
    expect(result.schema.rowCount).toBe(2);
  });

  it('reports bytes that are not UTF-8', async () => {
    const bytes = Buffer.concat([
      Buffer.from('name,city\nann,Paris\nbo,M'),
      Buffer.from([0xfc]), // "ü" in Latin-1
      Buffer.from('nchen\n'),
    ]);
    const result = await inferDataset(bufferInput(bytes));

    expect(result.report.problems[0]).toMatchObject({
      code: 'INVALID_UTF8',
      row: 2,
      line: 3,
    });
  });

  it('reports duplicate and empty header names', async () => {
    const result = await csv('a,b,a,\n1,2,3,4\n5,6,7,8\n');

    expect(codes(result)).toEqual(
      expect.arrayContaining(['DUPLICATE_HEADER', 'EMPTY_HEADER']),
    );
    expect(
      result.report.problems.find((p) => p.code === 'DUPLICATE_HEADER'),
    ).toMatchObject({ column: 'a', row: 0 });
    expect(
      result.report.problems.find((p) => p.code === 'EMPTY_HEADER'),
    ).toMatchObject({ column: 'column_4' });
  });

  it('reports an empty file and a header-only file', async () => {
    expect(codes(await csv(''))).toEqual(['EMPTY_FILE']);
    expect(codes(await csv('\ufeff\r\n'))).toEqual(['EMPTY_FILE']);
    expect(codes(await csv('a,b,c\n'))).toEqual(['HEADER_ONLY']);
  });

  it('stops at one 100 MB field without reading the rest', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    const input: DatasetInput = {
      open: () => {
        sent = 0;

        return new Readable({
          read() {
            if (sent === 0) this.push('a,b\n1,');
            if (sent >= 100 * 1024 * 1024) {
              this.push('\n');
              this.push(null);

              return;
            }
            sent += chunk.length;
            this.push(chunk);
          },
        });
      },
    };
    const result = await inferDataset(input, {
      limits: { maxRecordBytes: 1024 * 1024 },
    });

    expect(result.report.problems[0]).toMatchObject({
      code: 'RECORD_TOO_LARGE',
      row: 1,
    });
    expect(sent).toBeLessThan(4 * 1024 * 1024);
  });

  it('reports NaN, Inf and 1e999 in a numeric column', async () => {
    const result = await csv('x,y\n1.5,a\nNaN,b\n2.5,c\nInf,d\n1e999,e\n3,f\n');

    const problem = result.report.problems.find(
      (p) => p.code === 'NON_FINITE_NUMBER',
    );
    expect(result.report.ok).toBe(false);
    expect(result.schema.columns[0].type).toBe('numeric');
    expect(problem).toMatchObject({
      column: 'x',
      row: 2,
      count: 3,
      examples: [
        { row: 2, value: 'NaN', column: 'x' },
        { row: 4, value: 'Inf', column: 'x' },
        { row: 5, value: '1e999', column: 'x' },
      ],
    });
  });

  it('reports text in a mostly numeric column', async () => {
    const lines = ['v'];
    for (let i = 0; i < 50; i++) lines.push(i === 17 ? 'abc' : String(i));
    const result = await csv(lines.join('\n'));

    expect(result.report.problems[0]).toMatchObject({
      code: 'MIXED_TYPES',
      column: 'v',
      row: 18,
      count: 1,
    });
  });
});

describe('inferDataset on JSON Lines', () => {
  it('infers columns from keys, with nulls as missing', async () => {
    const text =
      '{"x": 1.5, "ok": true, "tag": "a", "meta": {"k": 1}}\n' +
      '{"x": 2.5, "ok": false, "tag": "b", "meta": [2]}\r\n' +
      '\n' +
      '{"x": null, "ok": true, "tag": "a", "meta": "three"}\n';
    const result = await inferDataset(bufferInput(Buffer.from(text)));

    expect(result.settings.format).toBe('jsonl');
    expect(result.schema.columns.map((c) => [c.name, c.type])).toEqual([
      ['x', 'numeric'],
      ['ok', 'boolean'],
      ['tag', 'categorical'],
      ['meta', 'text'],
    ]);
    expect(result.schema.columns[0].statistics).toMatchObject({
      count: 2,
      missing: 1,
      mean: 2,
    });
  });

  it('reports invalid lines, non-objects and non-finite numbers', async () => {
    const text = '{"x": 1}\n{"x": 2\n[1, 2]\n{"x": 1e999}\n{"x": 3}\n';
    const result = await inferDataset(bufferInput(Buffer.from(text)));

    expect(result.report.ok).toBe(false);
    expect(result.report.problems.map((p) => [p.code, p.row])).toEqual([
      ['INVALID_JSON', 2],
      ['NOT_AN_OBJECT', 3],
      ['NON_FINITE_NUMBER', 4],
    ]);
  });

  it('reports an empty file, a long line and bytes that are not UTF-8', async () => {
    const infer = (bytes: Buffer) =>
      inferDataset(bufferInput(bytes, 'data.jsonl'), {
        settings: { format: 'jsonl' },
        limits: { maxRecordBytes: 1000 },
      });
    const long = Buffer.from(`{"x": 1}\n{"x": "${'y'.repeat(5000)}"}\n`);
    const latin1 = Buffer.concat([
      Buffer.from('{"x": "a"}\n{"x": "'),
      Buffer.from([0xe9]),
      Buffer.from('"}\n'),
    ]);

    expect(codes(await infer(Buffer.from('\n\n')))).toEqual(['EMPTY_FILE']);
    expect((await infer(long)).report.problems[0]).toMatchObject({
      code: 'RECORD_TOO_LARGE',
      line: 2,
    });
    expect((await infer(latin1)).report.problems[0]).toMatchObject({
      code: 'INVALID_UTF8',
      line: 2,
    });
  });
});
