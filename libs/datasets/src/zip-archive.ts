import { PassThrough, type Readable } from 'node:stream';

import yauzl from 'yauzl';

import type { DatasetInput } from './input';
import { DatasetError, DatasetProblemCode } from './problems';
import type { ReportBuilder } from './report-builder';
import type { ReadLimits } from './table';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const UNIX = 3;
const IGNORED = /(^|\/)(__MACOSX\/|\.[^/]*$|Thumbs\.db$|desktop\.ini$)/i;

/** A regular file of the archive that passed the path checks. */
export interface ArchiveFile {
  path: string;
  entry: yauzl.Entry;
}

/**
 * Lists a zip archive's central directory through byte ranges and keeps
 * only entries safe to read: every path with `..`, a leading slash or drive,
 * or a backslash, and every symlink, is reported and left out. Nothing is
 * ever written to disk; the checks also protect whoever extracts the file.
 */
export async function listArchive(
  input: DatasetInput,
  limits: ReadLimits,
  report: ReportBuilder | undefined,
): Promise<{ zip: yauzl.ZipFile; files: ArchiveFile[] }> {
  if (input.openRange === undefined || input.size === undefined) {
    throw new Error(
      'Reading a zip archive needs DatasetInput.openRange and size.',
    );
  }
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromRandomAccessReaderPromise(
      new RangeReader(input),
      input.size,
      {
        autoClose: false,
        lazyEntries: true,
        decodeStrings: false,
        validateEntrySizes: true,
      },
    );
  } catch (error) {
    throw archiveError(error);
  }
  if (zip.entryCount > limits.maxArchiveEntries) {
    zip.close();
    throw new DatasetError(
      DatasetProblemCode.ArchiveTooManyEntries,
      `The archive has ${zip.entryCount} entries, over the limit of ` +
        `${limits.maxArchiveEntries}.`,
    );
  }
  const files: ArchiveFile[] = [];
  let seen = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      seen += 1;
      if (seen > limits.maxArchiveEntries) {
        throw new DatasetError(
          DatasetProblemCode.ArchiveTooManyEntries,
          `The archive has more than ${limits.maxArchiveEntries} entries.`,
        );
      }
      const file = checkEntry(entry, report);
      if (file !== undefined) files.push(file);
    }
  } catch (error) {
    zip.close();
    throw archiveError(error);
  }

  return { zip, files };
}

function checkEntry(
  entry: yauzl.Entry,
  report: ReportBuilder | undefined,
): ArchiveFile | undefined {
  const raw = entry.fileNameRaw;
  const path = raw.toString('utf8');
  const unsafe = unsafeReason(path);
  if (unsafe !== undefined) {
    report?.add({
      code: DatasetProblemCode.UnsafePath,
      severity: 'error',
      message:
        `Archive entry "${path}" ${unsafe}; entries must be relative paths ` +
        'with forward slashes inside the archive.',
      example: { entry: path },
    });

    return undefined;
  }
  const made = entry.versionMadeBy >> 8;
  const mode = entry.externalFileAttributes >>> 16;
  if (made === UNIX && (mode & S_IFMT) === S_IFLNK) {
    report?.add({
      code: DatasetProblemCode.SymlinkEntry,
      severity: 'error',
      message:
        `Archive entry "${path}" is a symbolic link; archives may hold only ` +
        'folders and image files.',
      example: { entry: path },
    });

    return undefined;
  }
  if (path.endsWith('/')) return undefined;
  if (IGNORED.test(path)) {
    report?.add({
      code: DatasetProblemCode.IgnoredEntry,
      severity: 'warning',
      message: `Archive entry "${path}" is a system or hidden file and was skipped.`,
      example: { entry: path },
    });

    return undefined;
  }

  return { path, entry };
}

function unsafeReason(path: string): string | undefined {
  if (path.includes('\\')) return 'contains a backslash';
  if (path.includes('\u0000')) return 'contains a NUL character';
  if (path.startsWith('/') || /^[a-zA-Z]:/.test(path)) {
    return 'is an absolute path';
  }
  if (path.split('/').some((part) => part === '..')) {
    return 'climbs out of the archive with ".."';
  }

  return undefined;
}

/** Running totals that enforce the inflation caps across one archive. */
export class InflateBudget {
  private total = 0;

  constructor(private readonly limits: ReadLimits) {}

  /**
   * Inflates one entry, counting bytes as they come out of the inflater and
   * stopping as soon as a cap is passed. Declared sizes are not trusted.
   */
  async read(zip: yauzl.ZipFile, file: ArchiveFile): Promise<Buffer> {
    const { entry, path } = file;
    if (entry.isEncrypted() || !entry.canDecodeFileData()) {
      throw new DatasetError(
        DatasetProblemCode.InvalidArchive,
        `Archive entry "${path}" is encrypted or uses an unsupported ` +
          'compression method; use plain deflate without a password.',
        { examples: [{ entry: path }] },
      );
    }
    const limits = this.limits;
    const allowedByRatio = Math.max(
      limits.ratioFloorBytes,
      limits.maxCompressionRatio * Math.max(entry.compressedSize, 1),
    );
    const chunks: Buffer[] = [];
    let inflated = 0;
    let stream: Readable;
    try {
      stream = await zip.openReadStreamPromise(entry);
    } catch (error) {
      throw archiveError(error, path);
    }
    try {
      for await (const chunk of stream) {
        const bytes = chunk as Buffer;
        inflated += bytes.length;
        this.total += bytes.length;
        if (this.total > limits.maxInflatedBytes) {
          throw capError(
            DatasetProblemCode.ArchiveTooLarge,
            `The archive inflates past ${limits.maxInflatedBytes} bytes ` +
              `(reached while reading "${path}").`,
            path,
          );
        }
        if (inflated > allowedByRatio) {
          throw capError(
            DatasetProblemCode.ArchiveRatio,
            `Archive entry "${path}" inflates more than ` +
              `${limits.maxCompressionRatio} times its compressed size ` +
              `(${entry.compressedSize} bytes); this looks like a zip bomb.`,
            path,
          );
        }
        if (inflated > limits.maxEntryBytes) {
          throw capError(
            DatasetProblemCode.ImageTooLarge,
            `Archive entry "${path}" is larger than ${limits.maxEntryBytes} ` +
              'bytes once inflated.',
            path,
          );
        }
        chunks.push(bytes);
      }
    } catch (error) {
      stream.destroy();
      throw archiveError(error, path);
    }

    return Buffer.concat(chunks);
  }
}

function capError(
  code: DatasetProblemCode,
  message: string,
  entry: string,
): DatasetError {
  return new DatasetError(code, message, { examples: [{ entry }] });
}

function archiveError(error: unknown, entry?: string): Error {
  if (error instanceof DatasetError) return error;
  const message = (error as Error).message ?? String(error);
  const examples = entry ? [{ entry }] : [];
  if (/too many bytes|not enough bytes/i.test(message)) {
    return new DatasetError(
      DatasetProblemCode.ArchiveSizeMismatch,
      `Archive entry "${entry}" inflates to a different size than its ` +
        `header declares (${message}); the archive is damaged or crafted.`,
      { examples },
    );
  }

  return new DatasetError(
    DatasetProblemCode.InvalidArchive,
    `The zip archive cannot be read${entry ? ` at "${entry}"` : ''}: ` +
      `${message}.`,
    { examples },
  );
}

/** Lets yauzl read the archive through `DatasetInput.openRange`. */
class RangeReader extends yauzl.RandomAccessReader {
  constructor(private readonly input: DatasetInput) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const out = new PassThrough();
    Promise.resolve(this.input.openRange!(start, end)).then(
      (source) => {
        source.on('error', (error) => out.destroy(error));
        source.pipe(out);
      },
      (error: Error) => out.destroy(error),
    );

    return out;
  }
}
