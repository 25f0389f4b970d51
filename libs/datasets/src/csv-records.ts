import { parse, type Parser } from 'csv-parse';

import { DatasetError, DatasetProblemCode } from './problems';
import { Utf8Checker } from './utf8';

export interface RecordOptions {
  delimiter: string;
  hasHeader: boolean;
  maxRecordBytes: number;
  /**
   * Split lines without quotes directly instead of through csv-parse. From
   * the first line holding a quote character on, csv-parse reads the rest of
   * the file. Both give the same records; see the spec.
   */
  fastUnquoted: boolean;
}

/**
 * A field as read: the text, or the number it spells when the text is a
 * plain decimal that `String(number)` gives back exactly (no leading or
 * trailing zeros, no exponent, at most 15 digits), or null when it is empty
 * or only white space. Such numbers skip the string entirely; everything
 * else stays text for inference to judge.
 */
export type Field = string | number | null;

interface CsvParseError extends Error {
  code: string;
  lines?: number;
  records?: number;
}

const QUOTE = 0x22;
const GROUP_RECORDS = 256;
const LF = 0x0a;
const CR = 0x0d;

/**
 * Turns UTF-8-checked chunks into records (arrays of field strings, the
 * header included), keeping count of records and lines so that every
 * error names its row and line.
 */
export async function* delimitedRecords(
  chunks: AsyncIterable<Buffer>,
  options: RecordOptions,
): AsyncGenerator<Field[][]> {
  const { delimiter, hasHeader, maxRecordBytes } = options;
  const checker = new Utf8Checker();
  const headerRows = hasHeader ? 1 : 0;
  let fast = options.fastUnquoted;
  let records = 0;
  let lines = 0;
  let carry: Buffer | undefined;
  let started = false;
  let parser: Parser | undefined;
  let linesBase = 0;
  let recordsBase = 0;
  let lastByte = LF;

  const nextRow = () => Math.max(records + 1 - headerRows, 0);
  // `line` is the line being read: counted already inside `split`.
  const tooLarge = (line = lines + 1) =>
    recordError(DatasetProblemCode.RecordTooLarge, nextRow(), line);
  const delimiterCode = delimiter.charCodeAt(0);
  /** Splits lines from `start` until `limit` records; returns where it stopped. */
  const split = (
    text: string,
    out: Field[][],
    from0 = 0,
    limit = Infinity,
  ): number => {
    let start = from0;
    while (start < text.length && out.length < limit) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      let stop = end;
      if (stop > start && text.charCodeAt(stop - 1) === CR) stop -= 1;
      const from = start;
      start = end + 1;
      lines += 1;
      if (stop === from) continue;
      if (stop - from > maxRecordBytes) throw tooLarge(lines);
      const record: Field[] = [];
      let field = from;
      for (;;) {
        const next = scanField(text, field, stop, delimiterCode, delimiter);
        record.push(scanned);
        if (next >= stop) break;
        field = next + 1;
      }
      out.push(record);
      records += 1;
    }

    return start;
  };
  const drain = (out: Field[][]) => {
    let record: Field[] | null;
    while ((record = parser!.read() as Field[] | null) !== null) {
      out.push(nullBlanks(record));
      records += 1;
    }
    if (parser!.errored) {
      throw csvError(parser!.errored as CsvParseError, {
        records,
        recordsBase,
        linesBase,
        headerRows,
      });
    }
  };
  const startParser = () => {
    parser = parse({
      bom: true,
      delimiter,
      max_record_size: maxRecordBytes,
      relax_column_count: true,
      skip_empty_lines: true,
    });
    parser.on('error', () => {
      // Read through `parser.errored`, where the row is known.
    });
    linesBase = lines;
    recordsBase = records;
  };
  // The parser holds back the end of the last record until it sees more
  // bytes, so the row of a bad byte is found by ending the parse there.
  const placeBadByte = async (): Promise<{ row: number; line: number }> => {
    if (fast) return { row: nextRow(), line: lines + 1 };
    parser!.end();
    let partial: boolean;
    try {
      for await (const _record of parser!) records += 1;
      partial = lastByte !== LF && lastByte !== CR;
    } catch {
      // The prefix ends inside a quoted field: the bad byte belongs to it.
      partial = false;
    }
    const row = records - headerRows + (partial ? 0 : 1);
    const line = linesBase + parser!.info.lines + (partial ? 0 : 1);

    return { row: Math.max(row, hasHeader ? 0 : 1), line };
  };

  if (!fast) startParser();
  for await (const chunk of chunks) {
    const { valid, invalidAt } = checker.push(chunk);
    if (valid.length > 0) lastByte = valid[valid.length - 1];
    const out: Field[][] = [];
    if (fast) {
      let bytes = carry ? Buffer.concat([carry, valid]) : valid;
      carry = undefined;
      if (!started && bytes.length > 0) {
        started = true;
        if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
          bytes = bytes.subarray(3);
        }
        fast = !endsLinesWithBareCr(bytes);
      }
      const quote = fast ? bytes.indexOf(QUOTE) : 0;
      if (quote >= 0) {
        const lineStart = fast ? bytes.lastIndexOf(LF, quote) + 1 : 0;
        split(bytes.toString('utf8', 0, lineStart), out);
        fast = false;
        startParser();
        parser!.write(bytes.subarray(lineStart));
        drain(out);
      } else {
        const end = bytes.lastIndexOf(LF) + 1;
        const text = bytes.toString('utf8', 0, end);
        // Small groups die young: far less garbage collection than a
        // chunk's worth of rows alive at once.
        for (let at = 0; at < text.length;) {
          const group: Field[][] = [];
          at = split(text, group, at, GROUP_RECORDS);
          if (group.length > 0) yield group;
        }
        if (end < bytes.length) carry = Buffer.from(bytes.subarray(end));
        if (carry && carry.length > maxRecordBytes) throw tooLarge();
      }
    } else {
      parser!.write(valid);
      drain(out);
    }
    if (invalidAt !== undefined) {
      throw invalidUtf8(invalidAt, await placeBadByte());
    }
    if (out.length > 0) yield out;
  }
  const truncated = checker.end();
  if (truncated !== undefined) {
    throw invalidUtf8(truncated, await placeBadByte());
  }
  const rest: Field[][] = [];
  if (fast) {
    if (carry) split(carry.toString('utf8'), rest);
  } else {
    parser!.end();
    try {
      for await (const record of parser!) {
        rest.push(nullBlanks(record as Field[]));
        records += 1;
      }
    } catch (error) {
      throw csvError(error as CsvParseError, {
        records,
        recordsBase,
        linesBase,
        headerRows,
      });
    }
  }
  yield rest;
}

/** A file whose first line ends in a lone CR (old Mac files). */
function endsLinesWithBareCr(bytes: Buffer): boolean {
  const cr = bytes.indexOf(CR);
  const lf = bytes.indexOf(LF);
  if (cr < 0) return false;

  return (lf < 0 || cr < lf) && bytes[cr + 1] !== LF;
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

function recordError(
  code: typeof DatasetProblemCode.RecordTooLarge,
  row: number,
  line: number,
): DatasetError {
  return new DatasetError(
    code,
    `Row ${row} is larger than the limit for one record; split the ` +
      'value, or check for a quote that is never closed before it.',
    { row, line },
  );
}

interface Position {
  records: number;
  recordsBase: number;
  linesBase: number;
  headerRows: number;
}

function csvError(error: CsvParseError, at: Position): Error {
  // csv-parse names one code without its usual CSV_ prefix.
  const known =
    typeof error.code === 'string' &&
    (error.code.startsWith('CSV_') || error.code === 'INVALID_OPENING_QUOTE');
  if (!known) return error;
  const line =
    error.lines === undefined ? undefined : at.linesBase + error.lines;
  // The parser's own count is ahead of ours when it fails mid-chunk.
  const parsed = Math.max(at.records, at.recordsBase + (error.records ?? 0));
  const row = Math.max(parsed + 1 - at.headerRows, 0);
  switch (error.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return new DatasetError(
        DatasetProblemCode.UnterminatedQuote,
        `A quoted field opened in row ${row} is never closed; close the ` +
          'quote or double any quote character inside a quoted field.',
        { row, line },
      );
    case 'CSV_MAX_RECORD_SIZE':
      return recordError(DatasetProblemCode.RecordTooLarge, row, line ?? 0);
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'INVALID_OPENING_QUOTE':
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

const POWERS_OF_TEN = Array.from({ length: 16 }, (_, i) => 10 ** i);

/** Where `scanField` leaves the field, so no object is made per field. */
let scanned: Field = '';

/**
 * Reads one field starting at `start`, up to the delimiter or `stop`, into
 * `scanned`; returns the index where it ended. The field is a number when
 * its text is a canonical decimal: up to 15 digits the integer is exact and
 * one division by an exact power of ten rounds correctly, so the number
 * equals `Number(text)` and `String(number)` gives the text back.
 */
function scanField(
  text: string,
  start: number,
  stop: number,
  delimiter: number,
  delimiterText: string,
): number {
  let at = start;
  // No bound checks in the loops: the character at `stop` is a line end or
  // past the text (NaN), and neither is a digit, a point or a minus.
  let code = text.charCodeAt(at);
  const negative = code === 0x2d;
  if (negative) code = text.charCodeAt(++at);
  const integerStart = at;
  let mantissa = 0;
  while (code >= 0x30 && code <= 0x39) {
    mantissa = mantissa * 10 + (code - 0x30);
    code = text.charCodeAt(++at);
  }
  const integerDigits = at - integerStart;
  let fractionDigits = 0;
  let lastDigit = 0;
  if (code === 0x2e) {
    code = text.charCodeAt(++at);
    const fractionStart = at;
    while (code >= 0x30 && code <= 0x39) {
      mantissa = mantissa * 10 + (code - 0x30);
      lastDigit = code;
      code = text.charCodeAt(++at);
    }
    fractionDigits = at - fractionStart;
    if (fractionDigits === 0) fractionDigits = -1;
  }
  const ended = at >= stop || code === delimiter;
  if (
    ended &&
    integerDigits > 0 &&
    integerDigits + Math.max(fractionDigits, 0) <= 15 &&
    (integerDigits === 1 || text.charCodeAt(integerStart) !== 0x30) &&
    fractionDigits !== -1 &&
    (fractionDigits === 0 || lastDigit !== 0x30)
  ) {
    const value =
      fractionDigits === 0
        ? mantissa
        : mantissa / POWERS_OF_TEN[fractionDigits];
    // "-0" and values JavaScript prints with an exponent stay text.
    if (!((value === 0 && negative) || (value !== 0 && value < 1e-6))) {
      scanned = negative ? -value : value;

      return at;
    }
  }
  if (!ended) {
    at = text.indexOf(delimiterText, at);
    if (at < 0 || at > stop) at = stop;
  }
  scanned = at === start ? null : blankToNull(text.slice(start, at));

  return at;
}

/** csv-parse gives empty fields as ""; rows carry them as null. */
function nullBlanks(record: Field[]): Field[] {
  for (let i = 0; i < record.length; i++) {
    const value = record[i] as string;
    if (value.length === 0) record[i] = null;
    else if (value.charCodeAt(0) <= 0x20) record[i] = blankToNull(value);
  }

  return record;
}

function blankToNull(value: string): string | null {
  return value.charCodeAt(0) <= 0x20 && value.trim() === '' ? null : value;
}

/**
 * One whole field `text[start, end)`, read as `scanField` reads it; `end`
 * must be the end of the text or of a line.
 */
export function fieldOf(text: string, start: number, end: number): Field {
  scanField(text, start, end, -2, '\u0000');

  return scanned;
}
