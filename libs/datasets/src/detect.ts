import { parse as parseSync } from 'csv-parse/sync';

import type { DatasetFormat } from './input';
import { DatasetError, DatasetProblemCode } from './problems';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const DELIMITERS = [',', '\t', ';', '|'];

/**
 * Decides the format from the first bytes of the file (magic numbers and
 * content first, the file name's extension only to tell CSV from TSV).
 */
export function detectFormat(head: Buffer, fileName?: string): DatasetFormat {
  if (startsWith(head, 'PAR1')) return 'parquet';
  if (
    startsWith(head, 'PK\u0003\u0004') ||
    startsWith(head, 'PK\u0005\u0006')
  ) {
    return 'images';
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    throw new DatasetError(
      DatasetProblemCode.UnknownFormat,
      'The file is gzip-compressed; upload it uncompressed (CSV, TSV, JSON ' +
        'Lines or Parquet) or as a zip archive of images.',
    );
  }
  const text = stripBom(head).toString('utf8').trimStart();
  if (text.startsWith('{')) return 'jsonl';
  if (text.startsWith('[')) {
    throw new DatasetError(
      DatasetProblemCode.UnknownFormat,
      'The file looks like a JSON array; upload JSON Lines instead (one ' +
        'JSON object per line).',
    );
  }
  if (fileName?.toLowerCase().endsWith('.tsv')) return 'tsv';

  return sniffDelimited(head).delimiter === '\t' ? 'tsv' : 'csv';
}

export interface DelimitedLayout {
  delimiter: string;
  hasHeader: boolean;
}

/**
 * Guesses the delimiter (the candidate that splits the first lines into the
 * same number of fields most consistently) and whether the first row is a
 * header (its cells are not numbers where the rows below are).
 */
export function sniffDelimited(head: Buffer): DelimitedLayout {
  const text = stripBom(head).toString('utf8');
  const end = text.lastIndexOf('\n');
  const complete = end >= 0 ? text.slice(0, end + 1) : text;
  const lines = complete
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.length > 0)
    .slice(0, 50);
  const delimiter = chooseDelimiter(lines);

  return { delimiter, hasHeader: looksLikeHeader(lines, delimiter) };
}

function chooseDelimiter(lines: string[]): string {
  let best = ',';
  let bestScore = 0;
  for (const candidate of DELIMITERS) {
    const counts = lines.map((line) => countOutsideQuotes(line, candidate));
    const mode = modeOf(counts);
    if (mode === 0) continue;
    const score = counts.filter((c) => c === mode).length / counts.length;
    if (score > bestScore) {
      best = candidate;
      bestScore = score;
    }
  }

  return best;
}

function countOutsideQuotes(line: string, delimiter: string): number {
  let count = 0;
  let quoted = false;
  for (const char of line) {
    if (char === '"') quoted = !quoted;
    else if (!quoted && char === delimiter) count += 1;
  }

  return count;
}

function modeOf(values: number[]): number {
  const counts = new Map<number, number>();
  let mode = 0;
  let modeCount = 0;
  for (const value of values) {
    const count = (counts.get(value) ?? 0) + 1;
    counts.set(value, count);
    if (count > modeCount || (count === modeCount && value > mode)) {
      mode = value;
      modeCount = count;
    }
  }

  return mode;
}

function looksLikeHeader(lines: string[], delimiter: string): boolean {
  let rows: string[][];
  try {
    rows = parseSync(lines.join('\n'), {
      delimiter,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as string[][];
  } catch {
    // A broken quote in the first lines: the full parse reports it with its
    // line; assume the usual layout until then.
    return true;
  }
  if (rows.length < 2) return true;
  const [first, ...rest] = rows;
  let score = 0;
  first.forEach((cell, column) => {
    const below = rest
      .map((row) => row[column])
      .filter((value) => value !== undefined && value.trim() !== '');
    if (below.length === 0 || cell.trim() === '') return;
    const belowNumeric = below.every(isNumberLike);
    if (isNumberLike(cell)) score -= 1;
    else if (belowNumeric) score += 1;
  });

  return score >= 0;
}

function isNumberLike(value: string): boolean {
  return value.trim() !== '' && Number.isFinite(Number(value));
}

export function stripBom(bytes: Buffer): Buffer {
  return bytes.subarray(0, 3).equals(BOM) ? bytes.subarray(3) : bytes;
}

function startsWith(bytes: Buffer, prefix: string): boolean {
  return bytes.subarray(0, prefix.length).toString('latin1') === prefix;
}
