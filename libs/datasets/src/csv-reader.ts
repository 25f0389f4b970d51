import { parse, type Parser } from 'csv-parse';

import { sniffDelimited, stripBom } from './detect';
import { type Cell, type DatasetInput, peek } from './input';
import { DatasetError, DatasetProblemCode, preview } from './problems';
import type { ReaderOptions, ReadSettings, RowBatch, Table } from './table';
import { normalizeHeader } from './table';
import { Utf8Checker } from './utf8';

const SNIFF_BYTES = 64 * 1024;

interface CsvParseError extends Error {
  code: string;
  lines?: number;
  records?: number;
}

/**
 * Reads CSV or TSV with csv-parse, fed chunk by chunk so that every record
 * and every error is tied to its row. Bytes are checked for UTF-8 on the way.
 */
export async function readDelimited(
  input: DatasetInput,
  settings: ReadSettings,
  options: ReaderOptions,
): Promise<Table> {
  const stream = await input.open();
  const { head, chunks } = await peek(stream, SNIFF_BYTES);
  if (head.length < SNIFF_BYTES && stripBom(head).toString().trim() === '') {
    throw new DatasetError(
      DatasetProblemCode.EmptyFile,
      'The file is empty; upload a file with a header and at least one row.',
    );
  }
  const sniffed =
    settings.delimiter === undefined || settings.hasHeader === undefined
      ? sniffDelimited(head)
      : undefined;
  const delimiter = settings.delimiter ?? sniffed!.delimiter;
  const hasHeader = settings.hasHeader ?? sniffed!.hasHeader;
  const parser = parse({
    bom: true,
    delimiter,
    max_record_size: options.limits.maxRecordBytes,
    relax_column_count: true,
    skip_empty_lines: true,
  });
  parser.on('error', () => {
    // Read through `parser.errored` where the row is known.
  });
  const records = recordsOf(parser, chunks, hasHeader);
  let first = await records.next();
  while (!first.done && first.value.length === 0) first = await records.next();
  if (first.done) {
    throw new DatasetError(
      DatasetProblemCode.EmptyFile,
      'The file holds no records; upload a file with a header and rows.',
    );
  }
  let columns: string[];
  let pending: string[][];
  if (hasHeader) {
    const [header, ...rest] = first.value;
    columns = normalizeHeader(header, options.report);
    pending = rest;
  } else {
    columns = first.value[0].map((_, i) => `column_${i + 1}`);
    pending = first.value;
  }
  if (columns.length > options.limits.maxColumns) {
    throw new DatasetError(
      DatasetProblemCode.RecordTooLarge,
      `The file has ${columns.length} columns; at most ` +
        `${options.limits.maxColumns} are supported.`,
      { row: 0 },
    );
  }

  return {
    settings: {
      format: delimiter === '\t' ? 'tsv' : 'csv',
      delimiter,
      hasHeader,
    },
    columns,
    batches: batchesOf(records, pending, columns, hasHeader, options),
  };
}

async function* batchesOf(
  records: AsyncGenerator<string[][]>,
  pending: string[][],
  columns: string[],
  hasHeader: boolean,
  options: ReaderOptions,
): AsyncGenerator<RowBatch> {
  let row = 0;
  const width = columns.length;
  const toBatch = (group: string[][]): RowBatch => {
    const batch: RowBatch = { rows: [], rowNumbers: [] };
    for (const record of group) {
      row += 1;
      if (record.length !== width) {
        options.report?.add({
          code: DatasetProblemCode.RaggedRow,
          severity: 'error',
          message:
            `Row ${row} has ${record.length} fields where the ` +
            `${hasHeader ? 'header' : 'first row'} has ${width}; every row ` +
            'needs the same number of fields (quote fields that contain the ' +
            'delimiter).',
          example: { row, value: preview(record.join(',')) },
        });
        continue;
      }
      // Cells replace the strings in place: no second array per row.
      const cells = record as Cell[];
      for (let i = 0; i < width; i++) {
        const value = record[i];
        if (
          value.length === 0 ||
          (value.charCodeAt(0) <= 32 && value.trim() === '')
        ) {
          cells[i] = null;
        }
      }
      batch.rows.push(cells);
      batch.rowNumbers.push(row);
    }

    return batch;
  };
  if (pending.length > 0) yield toBatch(pending);
  for await (const group of records) {
    if (group.length > 0) yield toBatch(group);
  }
  if (row === 0) {
    throw new DatasetError(
      DatasetProblemCode.HeaderOnly,
      'The file has a header but no rows; add at least one row of data.',
    );
  }
}

/** Yields the records parsed from each chunk, header included. */
async function* recordsOf(
  parser: Parser,
  chunks: AsyncIterable<Buffer>,
  hasHeader: boolean,
): AsyncGenerator<string[][]> {
  const checker = new Utf8Checker();
  let records = 0;
  const drain = (): string[][] => {
    const out: string[][] = [];
    let record: string[] | null;
    while ((record = parser.read() as string[] | null) !== null) {
      out.push(record);
    }
    records += out.length;
    if (parser.errored) {
      throw csvError(parser.errored as CsvParseError, records, hasHeader);
    }

    return out;
  };
  let lastByte = 0x0a;
  // The parser holds back the end of the last record until it sees more
  // bytes, so the row of a bad byte is found by ending the parse there.
  const placeBadByte = async (): Promise<{ row: number; line: number }> => {
    parser.end();
    let partial: boolean;
    try {
      for await (const _record of parser) records += 1;
      partial = lastByte !== 0x0a && lastByte !== 0x0d;
    } catch {
      // The prefix ends inside a quoted field: the bad byte belongs to it.
      partial = false;
    }
    const row = records - (hasHeader ? 1 : 0) + (partial ? 0 : 1);
    const line = parser.info.lines + (partial ? 0 : 1);

    return { row: Math.max(row, hasHeader ? 0 : 1), line };
  };
  for await (const chunk of chunks) {
    const { valid, invalidAt } = checker.push(chunk);
    parser.write(valid);
    if (valid.length > 0) lastByte = valid[valid.length - 1];
    const out = drain();
    if (invalidAt !== undefined) {
      throw invalidUtf8(invalidAt, await placeBadByte());
    }
    yield out;
  }
  const truncated = checker.end();
  if (truncated !== undefined) {
    throw invalidUtf8(truncated, await placeBadByte());
  }
  parser.end();
  const rest: string[][] = [];
  try {
    for await (const record of parser) rest.push(record as string[]);
  } catch (error) {
    throw csvError(error as CsvParseError, records + rest.length, hasHeader);
  }
  records += rest.length;
  yield rest;
}

function invalidUtf8(
  offset: number,
  { row, line }: { row: number; line: number },
): DatasetError {
  return new DatasetError(
    DatasetProblemCode.InvalidUtf8,
    `Byte ${offset} (line ${line}) is not valid UTF-8; save the file as ` +
      'UTF-8 (with or without a byte order mark).',
    { row: Math.max(row, 0), line },
  );
}

function csvError(
  error: CsvParseError,
  records: number,
  hasHeader: boolean,
): Error {
  if (typeof error.code !== 'string' || !error.code.startsWith('CSV_')) {
    return error;
  }
  const line = error.lines;
  // The parser's own count is ahead of ours when it fails mid-chunk.
  const parsed = Math.max(records, error.records ?? 0);
  const row = Math.max(parsed + 1 - (hasHeader ? 1 : 0), 0);
  switch (error.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return new DatasetError(
        DatasetProblemCode.UnterminatedQuote,
        `A quoted field opened in row ${row} is never closed; close the ` +
          'quote or double any quote character inside a quoted field.',
        { row, line },
      );
    case 'CSV_MAX_RECORD_SIZE':
      return new DatasetError(
        DatasetProblemCode.RecordTooLarge,
        `Row ${row} is larger than the limit for one record; split the ` +
          'value, or check for a quote that is never closed before it.',
        { row, line },
      );
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_INVALID_OPENING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return new DatasetError(
        DatasetProblemCode.InvalidQuote,
        `Row ${row} has a quote character inside a field that is not ` +
          'quoted properly; wrap the field in quotes and double the quotes ' +
          'inside it.',
        { row, line },
      );
    default:
      return new DatasetError(
        DatasetProblemCode.MalformedCsv,
        `Row ${row} cannot be parsed: ${error.message}`,
        { row, line },
      );
  }
}
