import type { ImageShape } from './contract';
import {
  decodeImage,
  defaultShape,
  ImageDecodeError,
  imageKindOf,
  resizeImage,
} from './image-decode';
import type { DatasetInput } from './input';
import { DatasetError, DatasetProblemCode } from './problems';
import type { ReaderOptions, ReadSettings, RowBatch, Table } from './table';
import { type ArchiveFile, InflateBudget, listArchive } from './zip-archive';

const ARCHIVE_EXTENSIONS = /\.(zip|jar|tar|tgz|gz|bz2|xz|7z|rar|zst)$/i;
const IMAGE_EXTENSIONS = /\.(png|jpe?g)$/i;
const BATCH_ROWS = 64;

/**
 * Reads a zip archive with one folder per class: each image becomes a row
 * with an `image` column (decoded and resized to one shape) and a `label`
 * column (its folder). A single folder wrapping all class folders is
 * allowed. Every entry that is not a usable image is reported.
 */
export async function readImageArchive(
  input: DatasetInput,
  settings: ReadSettings,
  options: ReaderOptions,
): Promise<Table> {
  const { limits, report } = options;
  const { zip, files } = await listArchive(input, limits, report);
  if (files.some((f) => f.path === '[Content_Types].xml')) {
    zip.close();
    throw new DatasetError(
      DatasetProblemCode.UnknownFormat,
      'The file is an Office document (for example an Excel workbook), not ' +
        'an image archive; export the sheet as CSV and upload that.',
    );
  }
  const labelled = labelFiles(files, report);
  if (labelled.length === 0) {
    zip.close();
    throw new DatasetError(
      DatasetProblemCode.EmptyFile,
      'The archive holds no images in class folders; put each class in its ' +
        'own folder (for example cats/001.png, dogs/001.jpg).',
    );
  }
  let shape: ImageShape | undefined = settings.imageShape;
  const budget = new InflateBudget(limits);

  async function* batches(): AsyncGenerator<RowBatch> {
    let batch: RowBatch = { rows: [], rowNumbers: [] };
    try {
      for (const [index, { file, label }] of labelled.entries()) {
        const row = index + 1;
        const bytes = await budget.read(zip, file);
        const problem = screen(file.path, bytes);
        if (problem !== undefined) {
          report?.add({ ...problem, example: { row, entry: file.path } });
          continue;
        }
        let image;
        try {
          image = decodeImage(
            bytes,
            imageKindOf(bytes)!,
            limits.maxImagePixels,
          );
        } catch (error) {
          if (!(error instanceof ImageDecodeError)) throw error;
          report?.add({
            code: error.tooLarge
              ? DatasetProblemCode.ImageTooLarge
              : DatasetProblemCode.CorruptImage,
            severity: 'error',
            message: `Image "${file.path}" cannot be decoded: ${error.message}.`,
            example: { row, entry: file.path },
          });
          continue;
        }
        shape ??= defaultShape(image);
        batch.rows.push([resizeImage(image, shape), label]);
        batch.rowNumbers.push(row);
        if (batch.rows.length >= BATCH_ROWS) {
          yield batch;
          batch = { rows: [], rowNumbers: [] };
        }
      }
      if (batch.rows.length > 0) yield batch;
    } finally {
      zip.close();
    }
  }

  return {
    settings: { format: 'images', imageShape: settings.imageShape },
    columns: ['image', 'label'],
    batches: batches(),
  };
}

function screen(path: string, bytes: Buffer) {
  const nested =
    ARCHIVE_EXTENSIONS.test(path) ||
    bytes.subarray(0, 4).toString('latin1') === 'PK\u0003\u0004' ||
    (bytes[0] === 0x1f && bytes[1] === 0x8b);
  if (nested) {
    return {
      code: DatasetProblemCode.NestedArchive,
      severity: 'error' as const,
      message:
        `Archive entry "${path}" is itself an archive; put the images ` +
        'directly in the class folders.',
    };
  }
  if (imageKindOf(bytes) !== undefined) return undefined;
  if (IMAGE_EXTENSIONS.test(path)) {
    return {
      code: DatasetProblemCode.CorruptImage,
      severity: 'error' as const,
      message: `Image "${path}" is named as an image but its bytes are not PNG or JPEG.`,
    };
  }

  return {
    code: DatasetProblemCode.NotAnImage,
    severity: 'error' as const,
    message:
      `Archive entry "${path}" is not a PNG or JPEG image; image archives ` +
      'may hold only PNG and JPEG files in class folders.',
  };
}

interface LabelledFile {
  file: ArchiveFile;
  label: string;
}

/** The class of a file is its first folder, below one optional wrapper. */
function labelFiles(
  files: ArchiveFile[],
  report: ReaderOptions['report'],
): LabelledFile[] {
  const parts = files.map((f) => f.path.split('/').filter((p) => p !== ''));
  const root = parts[0]?.[0];
  const wrapped =
    parts.length > 0 && parts.every((p) => p.length >= 3 && p[0] === root);
  const out: LabelledFile[] = [];
  files.forEach((file, i) => {
    const path = wrapped ? parts[i].slice(1) : parts[i];
    if (path.length < 2) {
      report?.add({
        code: DatasetProblemCode.ArchiveLayout,
        severity: 'error',
        message:
          `Archive entry "${file.path}" is not inside a class folder; put ` +
          'each image in the folder named after its class.',
        example: { entry: file.path },
      });

      return;
    }
    out.push({ file, label: path[0] });
  });

  return out;
}
