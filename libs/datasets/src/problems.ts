/**
 * What can be wrong with a dataset, as stable codes. The API shows them to
 * users and tests match on them, so a code is never renamed.
 */
export const DatasetProblemCode = {
  EmptyFile: 'EMPTY_FILE',
  HeaderOnly: 'HEADER_ONLY',
  UnknownFormat: 'UNKNOWN_FORMAT',
  InvalidUtf8: 'INVALID_UTF8',
  UnterminatedQuote: 'UNTERMINATED_QUOTE',
  InvalidQuote: 'INVALID_QUOTE',
  MalformedCsv: 'MALFORMED_CSV',
  RaggedRow: 'RAGGED_ROW',
  DuplicateHeader: 'DUPLICATE_HEADER',
  EmptyHeader: 'EMPTY_HEADER',
  RecordTooLarge: 'RECORD_TOO_LARGE',
  InvalidJson: 'INVALID_JSON',
  NotAnObject: 'NOT_AN_OBJECT',
  UnknownKey: 'UNKNOWN_KEY',
  NonFiniteNumber: 'NON_FINITE_NUMBER',
  MixedTypes: 'MIXED_TYPES',
  MissingValues: 'MISSING_VALUES',
  EmptyColumn: 'EMPTY_COLUMN',
  PrecisionLoss: 'PRECISION_LOSS',
  InvalidParquet: 'INVALID_PARQUET',
  RowGroupTooLarge: 'ROW_GROUP_TOO_LARGE',
  InvalidArchive: 'INVALID_ARCHIVE',
  ArchiveTooLarge: 'ARCHIVE_TOO_LARGE',
  ArchiveRatio: 'ARCHIVE_RATIO',
  ArchiveTooManyEntries: 'ARCHIVE_TOO_MANY_ENTRIES',
  ArchiveSizeMismatch: 'ARCHIVE_SIZE_MISMATCH',
  UnsafePath: 'UNSAFE_PATH',
  SymlinkEntry: 'SYMLINK_ENTRY',
  NestedArchive: 'NESTED_ARCHIVE',
  ArchiveLayout: 'ARCHIVE_LAYOUT',
  IgnoredEntry: 'IGNORED_ENTRY',
  NotAnImage: 'NOT_AN_IMAGE',
  CorruptImage: 'CORRUPT_IMAGE',
  ImageTooLarge: 'IMAGE_TOO_LARGE',
  ShardCorrupt: 'SHARD_CORRUPT',
  ShardChecksumMismatch: 'SHARD_CHECKSUM_MISMATCH',
  InvalidOptions: 'INVALID_OPTIONS',
} as const;

export type DatasetProblemCode =
  (typeof DatasetProblemCode)[keyof typeof DatasetProblemCode];

export type ProblemSeverity = 'error' | 'warning';

/** One occurrence of a problem, enough for a user to find it. */
export interface ProblemExample {
  /** 1-based data row (the first row after a header is row 1; 0 = header). */
  row?: number;
  /** 1-based line in a text file, where it differs from the row. */
  line?: number;
  column?: string;
  /** The offending value, shortened to 80 characters. */
  value?: string;
  /** Archive entry path, for image archives. */
  entry?: string;
}

/**
 * A problem found while reading a dataset. Occurrences of the same code in
 * the same column are grouped: `row` and `column` locate the first one,
 * `count` says how many there were and `examples` lists the first few.
 */
export interface DatasetProblem {
  code: DatasetProblemCode;
  severity: ProblemSeverity;
  message: string;
  row?: number;
  line?: number;
  column?: string;
  count: number;
  examples: ProblemExample[];
}

export interface ValidationReport {
  /** True when there is no problem of severity `error`. */
  ok: boolean;
  problems: DatasetProblem[];
}

export interface DatasetErrorOptions {
  row?: number;
  line?: number;
  column?: string;
  examples?: ProblemExample[];
}

/**
 * Thrown when a dataset cannot be read any further (a broken quote, bytes
 * that are not UTF-8, an unsafe archive). Inference turns it into an `error`
 * problem of the report; other callers can match on `code`.
 */
export class DatasetError extends Error {
  readonly code: DatasetProblemCode;
  readonly row?: number;
  readonly line?: number;
  readonly column?: string;
  readonly examples: ProblemExample[];

  constructor(
    code: DatasetProblemCode,
    message: string,
    options: DatasetErrorOptions = {},
  ) {
    super(message);
    this.name = 'DatasetError';
    this.code = code;
    this.row = options.row;
    this.line = options.line;
    this.column = options.column;
    this.examples = options.examples ?? [];
  }

  toProblem(): DatasetProblem {
    const example: ProblemExample = { row: this.row, line: this.line };
    if (this.column !== undefined) example.column = this.column;

    return withoutUndefined({
      code: this.code,
      severity: 'error',
      message: this.message,
      row: this.row,
      line: this.line,
      column: this.column,
      count: 1,
      examples:
        this.examples.length > 0
          ? this.examples
          : [withoutUndefined(example)].filter(
              (e) => Object.keys(e).length > 0,
            ),
    });
  }
}

/** Shortens a user value for a message or an example. */
export function preview(value: unknown, max = 80): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text === undefined) return String(value);

  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function withoutUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) delete value[key];
  }

  return value;
}
