import { delimitedRecords, type Field } from './csv-records';
import { sniffDelimited, stripBom } from './detect';
import { type DatasetInput, peek } from './input';
import { DatasetError, DatasetProblemCode, preview } from './problems';
import type { ReaderOptions, ReadSettings, RowBatch, Table } from './table';
import { normalizeHeader } from './table';

const SNIFF_BYTES = 64 * 1024;

/**
 * Reads CSV or TSV: sniffs the delimiter and header from the first 64 KiB,
 * then streams records (see `delimitedRecords`), reporting ragged rows and
 * header problems. Bytes are checked for UTF-8 on the way.
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
  const records = delimitedRecords(chunks, {
    delimiter,
    hasHeader,
    maxRecordBytes: options.limits.maxRecordBytes,
    fastUnquoted: options.fastUnquoted ?? true,
  });
  let first = await records.next();
  while (!first.done && first.value.length === 0) first = await records.next();
  if (first.done) {
    throw new DatasetError(
      DatasetProblemCode.EmptyFile,
      'The file holds no records; upload a file with a header and rows.',
    );
  }
  let columns: string[];
  let pending: Field[][];
  if (hasHeader) {
    const [header, ...rest] = first.value;
    columns = normalizeHeader(
      header.map((name) => (name === null ? '' : String(name))),
      options.report,
    );
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
  records: AsyncGenerator<Field[][]>,
  pending: Field[][],
  columns: string[],
  hasHeader: boolean,
  options: ReaderOptions,
): AsyncGenerator<RowBatch> {
  let row = 0;
  const width = columns.length;
  const toBatch = (group: Field[][]): RowBatch => {
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
      batch.rows.push(record);
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
