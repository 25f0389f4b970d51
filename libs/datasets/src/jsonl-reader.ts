import { isUtf8 } from 'node:buffer';

import type { Cell, DatasetInput } from './input';
import { DatasetError, DatasetProblemCode, preview } from './problems';
import type { ReaderOptions, ReadSettings, RowBatch, Table } from './table';

/** Records read ahead to learn the keys before the first row is given out. */
const KEY_SCAN_RECORDS = 1000;
const KEY_SCAN_BYTES = 4 * 1024 * 1024;
const BATCH_ROWS = 512;

interface Line {
  text: string;
  line: number;
}

/**
 * Reads JSON Lines: one object per line, keys are columns. The columns are
 * the keys of the first thousand records; later unknown keys are reported
 * and dropped. Nested values are kept as JSON text.
 */
export async function readJsonLines(
  input: DatasetInput,
  _settings: ReadSettings,
  options: ReaderOptions,
): Promise<Table> {
  const lines = linesOf(await input.open(), options.limits.maxRecordBytes);
  const ahead: { object: Record<string, unknown>; row: number }[] = [];
  const keys = new Set<string>();
  let row = 0;
  let bytes = 0;
  const parseLine = (
    line: Line,
  ): { object: Record<string, unknown>; row: number } | undefined => {
    row += 1;
    const object = parseObject(line, row, options);

    return object === undefined ? undefined : { object, row };
  };
  while (ahead.length < KEY_SCAN_RECORDS && bytes < KEY_SCAN_BYTES) {
    const next = await lines.next();
    if (next.done) break;
    bytes += next.value.text.length;
    const parsed = parseLine(next.value);
    if (parsed === undefined) continue;
    ahead.push(parsed);
    for (const key of Object.keys(parsed.object)) keys.add(key);
  }
  if (row === 0) {
    throw new DatasetError(
      DatasetProblemCode.EmptyFile,
      'The file is empty; upload one JSON object per line.',
    );
  }
  const columns = [...keys];
  if (columns.length === 0) {
    throw new DatasetError(
      DatasetProblemCode.HeaderOnly,
      'No line holds a JSON object with keys; upload one object per line, ' +
        'its keys naming the columns.',
    );
  }
  const index = new Map(columns.map((name, i) => [name, i]));
  const toRow = (object: Record<string, unknown>, at: number): Cell[] => {
    const cells: Cell[] = new Array<Cell>(columns.length).fill(null);
    for (const key in object) {
      const position = index.get(key);
      if (position === undefined) {
        options.report?.add({
          code: DatasetProblemCode.UnknownKey,
          severity: 'warning',
          message:
            `Key "${key}" first appears in row ${at}, after the rows the ` +
            'columns were taken from; its values are ignored.',
          example: { row: at, column: key },
        });
        continue;
      }
      cells[position] = toCell(object[key]);
    }

    return cells;
  };

  async function* batches(): AsyncGenerator<RowBatch> {
    let batch: RowBatch = { rows: [], rowNumbers: [] };
    const add = (object: Record<string, unknown>, at: number) => {
      batch.rows.push(toRow(object, at));
      batch.rowNumbers.push(at);
    };
    for (const { object, row: at } of ahead) add(object, at);
    ahead.length = 0;
    for await (const line of lines) {
      const parsed = parseLine(line);
      if (parsed !== undefined) add(parsed.object, parsed.row);
      if (batch.rows.length >= BATCH_ROWS) {
        yield batch;
        batch = { rows: [], rowNumbers: [] };
      }
    }
    if (batch.rows.length > 0) yield batch;
  }

  return { settings: { format: 'jsonl' }, columns, batches: batches() };
}

function parseObject(
  line: Line,
  row: number,
  options: ReaderOptions,
): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line.text);
  } catch (error) {
    options.report?.add({
      code: DatasetProblemCode.InvalidJson,
      severity: 'error',
      message:
        `Row ${row} (line ${line.line}) is not valid JSON: ` +
        `${(error as Error).message}.`,
      example: { row, line: line.line, value: preview(line.text) },
    });

    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    options.report?.add({
      code: DatasetProblemCode.NotAnObject,
      severity: 'error',
      message:
        `Row ${row} (line ${line.line}) is JSON but not an object; every ` +
        'line must be one object whose keys name the columns.',
      example: { row, line: line.line, value: preview(line.text) },
    });

    return undefined;
  }

  return value as Record<string, unknown>;
}

function toCell(value: unknown): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value.trim() === '' ? null : value;
  if (typeof value === 'number' || typeof value === 'boolean') return value;

  return JSON.stringify(value);
}

/** Splits a byte stream into non-blank lines, checking size and UTF-8. */
async function* linesOf(
  stream: AsyncIterable<Buffer>,
  maxBytes: number,
): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let pending = 0;
  let lineNumber = 0;
  let first = true;
  const finish = (bytes: Buffer): Line | undefined => {
    lineNumber += 1;
    let line = bytes;
    if (first) {
      first = false;
      if (line[0] === 0xef && line[1] === 0xbb && line[2] === 0xbf) {
        line = line.subarray(3);
      }
    }
    if (line.length > 0 && line[line.length - 1] === 0x0d) {
      line = line.subarray(0, line.length - 1);
    }
    if (!isUtf8(line)) {
      throw new DatasetError(
        DatasetProblemCode.InvalidUtf8,
        `Line ${lineNumber} holds bytes that are not valid UTF-8; save the ` +
          'file as UTF-8.',
        { line: lineNumber },
      );
    }
    const text = line.toString('utf8');

    return text.trim() === '' ? undefined : { text, line: lineNumber };
  };
  const tooLarge = () =>
    new DatasetError(
      DatasetProblemCode.RecordTooLarge,
      `Line ${lineNumber + 1} is longer than ${maxBytes} bytes, the limit ` +
        'for one record; split the record or shorten its values.',
      { line: lineNumber + 1 },
    );
  for await (const chunk of stream) {
    let start = 0;
    for (;;) {
      const end = chunk.indexOf(0x0a, start);
      if (end < 0) break;
      if (pending + end - start > maxBytes) throw tooLarge();
      parts.push(chunk.subarray(start, end));
      const line = finish(parts.length === 1 ? parts[0] : Buffer.concat(parts));
      parts = [];
      pending = 0;
      start = end + 1;
      if (line !== undefined) yield line;
    }
    if (start < chunk.length) {
      parts.push(chunk.subarray(start));
      pending += chunk.length - start;
      if (pending > maxBytes) throw tooLarge();
    }
  }
  if (pending > 0) {
    const line = finish(Buffer.concat(parts));
    if (line !== undefined) yield line;
  }
}
