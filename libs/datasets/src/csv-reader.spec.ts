import { describe, expect, it } from 'vitest';

import { readDelimited } from './csv-reader';
import { bufferInput } from './input';
import { DatasetError } from './problems';
import { ReportBuilder } from './report-builder';
import { DEFAULT_LIMITS, type Table } from './table';

async function readAll(text: string | Buffer, limits = DEFAULT_LIMITS) {
  const report = new ReportBuilder();
  const input = bufferInput(Buffer.from(text));
  const table = await readDelimited(
    input,
    { format: 'csv' },
    { limits, report },
  );
  const rows = await rowsOf(table);

  return { table, rows, report: report.build() };
}

async function rowsOf(table: Table) {
  const rows: unknown[][] = [];
  for await (const batch of table.batches) rows.push(...batch.rows);

  return rows;
}

async function failure(text: string | Buffer, limits = DEFAULT_LIMITS) {
  try {
    await readAll(text, limits);
  } catch (error) {
    if (error instanceof DatasetError) return error;
    throw error;
  }
  throw new Error('expected a DatasetError');
}

describe('readDelimited', () => {
  it('reads quoted fields, CRLF and a BOM', async () => {
    const text = '\ufeffname,note\r\nann,"a, ""b"""\r\nbo,"two\r\nlines"\r\n';
    const { table, rows } = await readAll(text);

    expect(table.columns).toEqual(['name', 'note']);
    expect(rows).toEqual([
      ['ann', 'a, "b"'],
      ['bo', 'two\r\nlines'],
    ]);
  });

  it('detects a semicolon delimiter and a missing header', async () => {
    const { table, rows } = await readAll('1;2\n3;4\n');

    expect(table.settings).toMatchObject({ delimiter: ';', hasHeader: false });
    expect(table.columns).toEqual(['column_1', 'column_2']);
    expect(rows).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it('reports non-UTF-8 bytes with their row', async () => {
    const bytes = Buffer.concat([
      Buffer.from('a,b\n1,2\n3,4\n5,'),
      Buffer.from([0xff, 0x41]),
      Buffer.from('\n7,8\n'),
    ]);
    const error = await failure(bytes);

    expect(error.code).toBe('INVALID_UTF8');
    expect(error.row).toBe(3);
    expect(error.line).toBe(4);
  });

  it('keeps rows and characters whole across 64 KiB chunks', async () => {
    const lines = ['id,word'];
    for (let i = 1; i <= 5000; i++) {
      lines.push(i === 4000 ? `${i},"é\nè",extra` : `${i},"café\nthé"`);
    }
    const report = new ReportBuilder();
    const table = await readDelimited(
      bufferInput(Buffer.from(lines.join('\n'))),
      { format: 'csv' },
      { limits: DEFAULT_LIMITS, report },
    );
    const rows = await rowsOf(table);

    expect(rows).toHaveLength(4999);
    expect(rows.every((r) => r[1] === 'café\nthé')).toBe(true);
    expect(report.build().problems[0]).toMatchObject({
      code: 'RAGGED_ROW',
      row: 4000,
    });
  });
});
