import { readDelimited } from './csv-reader';
import { detectFormat } from './detect';
import { readImageArchive } from './image-reader';
import { type DatasetInput, peek } from './input';
import { readJsonLines } from './jsonl-reader';
import { readParquet } from './parquet-reader';
import type { ReaderOptions, ReadSettings, Table } from './table';

const DETECT_BYTES = 4096;

/**
 * Opens a dataset as a table of rows, detecting the format when
 * `settings.format` is not given.
 */
export async function openTable(
  input: DatasetInput,
  settings: Partial<ReadSettings>,
  options: ReaderOptions,
): Promise<Table> {
  const format = settings.format ?? (await sniffFormat(input));
  const resolved: ReadSettings = { ...settings, format };
  switch (format) {
    case 'csv':
    case 'tsv':
      return readDelimited(
        input,
        {
          ...resolved,
          delimiter:
            resolved.delimiter ?? (format === 'tsv' ? '\t' : undefined),
        },
        options,
      );
    case 'jsonl':
      return readJsonLines(input, resolved, options);
    case 'parquet':
      return readParquet(input, resolved, options);
    case 'images':
      return readImageArchive(input, resolved, options);
  }
}

async function sniffFormat(input: DatasetInput) {
  const stream = await input.open();
  try {
    const { head } = await peek(stream, DETECT_BYTES);

    return detectFormat(head, input.fileName);
  } finally {
    stream.destroy();
  }
}
