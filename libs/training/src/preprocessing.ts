import type { ColumnBatch, DatasetSchema } from '#libs/datasets';

import { TrainingConfigError } from './errors';
import type { FeatureOptions } from './spec';

/** How one feature is turned into model inputs; stored in the manifest. */
export type FeaturePlan =
  | {
      kind: 'numeric';
      column: string;
      /** Standardisation: (value - mean) / std; a missing value becomes 0. */
      mean: number;
      std: number;
      /** An extra 0/1 input that is 1 when the value is missing. */
      missingIndicator: boolean;
    }
  | {
      kind: 'categorical';
      column: string;
      /** Index i means vocabulary[i]; unknown or missing values use index
       * vocabulary.length. */
      vocabulary: string[];
      encoding: 'onehot' | 'embedding';
      /** Embedding width (embedding encoding only). */
      embeddingDim: number;
    }
  | {
      kind: 'image';
      column: string;
      height: number;
      width: number;
      channels: number;
      /** Pixels are scaled as value / 255. */
      scale: number;
    };

/** Where each feature lands among the model's inputs. */
export interface InputLayout {
  /** Width of the dense `input/tabular` input; 0 when there is none. */
  tabularWidth: number;
  /**
   * Embedding features, each with its own input: the one-hot of the value's
   * index (`size` = vocabulary length + 1, the last slot for unknown or
   * missing), multiplied in the model by the embedding kernel.
   */
  embeddings: { column: string; inputName: string; size: number }[];
  /** The image feature, at most one. */
  image?: { column: string; height: number; width: number; channels: number };
}

/** Model inputs for a run of rows, as flat typed arrays. */
export interface EncodedFeatures {
  size: number;
  tabular?: Float32Array;
  embeddings: Int32Array[];
  image?: Float32Array;
}

/** A row of a batch, referenced without copying. */
export interface RowRef {
  batch: ColumnBatch;
  index: number;
}

const EMBEDDING_THRESHOLD = 32;

export function planFeatures(
  features: (string | FeatureOptions)[],
  schema: DatasetSchema,
): FeaturePlan[] {
  if (!Array.isArray(features) || features.length === 0) {
    throw new TrainingConfigError(
      'spec.features',
      'list at least one input column.',
    );
  }
  const plans = features.map((entry, i) =>
    planFeature(
      typeof entry === 'string' ? { column: entry } : entry,
      schema,
      `spec.features[${i}]`,
    ),
  );
  if (plans.filter((plan) => plan.kind === 'image').length > 1) {
    throw new TrainingConfigError(
      'spec.features',
      'at most one image column is supported as input.',
    );
  }

  return plans;
}

function planFeature(
  options: FeatureOptions,
  schema: DatasetSchema,
  field: string,
): FeaturePlan {
  const column = schema.columns.find((c) => c.name === options.column);
  if (!column) {
    const names = schema.columns.map((c) => c.name).join(', ');
    throw new TrainingConfigError(
      `${field}.column`,
      `column "${options.column}" is not in the dataset; columns are ${names}.`,
    );
  }
  switch (column.type) {
    case 'numeric':
    case 'integer':
    case 'boolean': {
      const std = column.statistics.std;

      return {
        kind: 'numeric',
        column: column.name,
        mean: column.statistics.mean ?? 0,
        std: std !== undefined && std > 1e-12 ? std : 1,
        missingIndicator:
          options.missingIndicator ?? column.statistics.missing > 0,
      };
    }
    case 'categorical': {
      const vocabulary = column.vocabulary ?? [];
      if (vocabulary.length === 0) {
        throw new TrainingConfigError(
          `${field}.column`,
          `categorical column "${column.name}" has no vocabulary.`,
        );
      }
      const encoding =
        options.encoding ??
        (vocabulary.length > EMBEDDING_THRESHOLD ? 'embedding' : 'onehot');
      const embeddingDim =
        options.embeddingDim ??
        Math.min(16, Math.ceil(1.6 * Math.pow(vocabulary.length, 0.56)));
      if (!Number.isInteger(embeddingDim) || embeddingDim < 1) {
        throw new TrainingConfigError(
          `${field}.embeddingDim`,
          'use a positive integer.',
        );
      }

      return {
        kind: 'categorical',
        column: column.name,
        vocabulary: [...vocabulary],
        encoding,
        embeddingDim,
      };
    }
    case 'image': {
      if (!column.image) {
        throw new TrainingConfigError(
          `${field}.column`,
          `image column "${column.name}" has no image shape.`,
        );
      }

      return {
        kind: 'image',
        column: column.name,
        ...column.image,
        scale: 1 / 255,
      };
    }
    default:
      throw new TrainingConfigError(
        `${field}.column`,
        `column "${column.name}" is ${column.type}; inputs can be numeric, ` +
          'integer, boolean, categorical or image columns.',
      );
  }
}

export function inputLayout(plans: FeaturePlan[]): InputLayout {
  const layout: InputLayout = { tabularWidth: 0, embeddings: [] };
  for (const plan of plans) {
    if (plan.kind === 'numeric') {
      layout.tabularWidth += plan.missingIndicator ? 2 : 1;
    } else if (plan.kind === 'categorical' && plan.encoding === 'onehot') {
      layout.tabularWidth += plan.vocabulary.length + 1;
    } else if (plan.kind === 'categorical') {
      layout.embeddings.push({
        column: plan.column,
        inputName: `input/embed/${plan.column}`,
        size: plan.vocabulary.length + 1,
      });
    } else {
      const { column, height, width, channels } = plan;
      layout.image = { column, height, width, channels };
    }
  }

  return layout;
}

/** Reads one row's raw value of a feature; `undefined` means missing. */
type CellReader = (plan: FeaturePlan, row: number) => number | undefined;

function allocate(layout: InputLayout, size: number): EncodedFeatures {
  const image = layout.image;

  return {
    size,
    tabular:
      layout.tabularWidth > 0
        ? new Float32Array(size * layout.tabularWidth)
        : undefined,
    embeddings: layout.embeddings.map(() => new Int32Array(size)),
    image: image
      ? new Float32Array(size * image.height * image.width * image.channels)
      : undefined,
  };
}

function writeRow(
  plans: FeaturePlan[],
  layout: InputLayout,
  out: EncodedFeatures,
  row: number,
  read: CellReader,
  writeImage: (plan: Extract<FeaturePlan, { kind: 'image' }>) => void,
): void {
  let offset = row * layout.tabularWidth;
  let embedding = 0;
  for (const plan of plans) {
    if (plan.kind === 'numeric') {
      const value = read(plan, row);
      const missing = value === undefined || Number.isNaN(value);
      out.tabular![offset++] = missing ? 0 : (value - plan.mean) / plan.std;
      if (plan.missingIndicator) {
        out.tabular![offset++] = missing ? 1 : 0;
      }
    } else if (plan.kind === 'categorical') {
      const code = read(plan, row);
      const size = plan.vocabulary.length;
      const index =
        code === undefined || code < 0 || code >= size ? size : code;
      if (plan.encoding === 'onehot') {
        out.tabular![offset + index] = 1;
        offset += size + 1;
      } else {
        out.embeddings[embedding++][row] = index;
      }
    } else {
      writeImage(plan);
    }
  }
}

/** Encodes rows of column batches into model inputs. */
export function encodeRows(
  plans: FeaturePlan[],
  layout: InputLayout,
  rows: RowRef[],
): EncodedFeatures {
  const out = allocate(layout, rows.length);
  const pixels = layout.image
    ? layout.image.height * layout.image.width * layout.image.channels
    : 0;
  rows.forEach((ref, row) => {
    writeRow(
      plans,
      layout,
      out,
      row,
      (plan) => {
        const data = ref.batch.columns[plan.column];
        if (!data) {
          throw new TrainingConfigError(
            `data.${plan.column}`,
            `a batch has no column "${plan.column}", which the model reads.`,
          );
        }
        const value = data[ref.index];
        if (data instanceof Int32Array) {
          return value < 0 ? undefined : value;
        }

        return value;
      },
      (plan) => {
        const data = ref.batch.columns[plan.column];
        const start = ref.index * pixels;
        const target = out.image!;
        for (let p = 0; p < pixels; p++) {
          target[row * pixels + p] = data[start + p] * plan.scale;
        }
      },
    );
  });

  return out;
}

/** A problem with one field of one row given to `predict`. */
export interface RowError {
  row: number;
  field: string;
  message: string;
}

/** Encodes plain JSON rows (as a client sends them) into model inputs. */
export function encodeJsonRows(
  plans: FeaturePlan[],
  layout: InputLayout,
  rows: Record<string, unknown>[],
): { features: EncodedFeatures; errors: RowError[] } {
  const out = allocate(layout, rows.length);
  const errors: RowError[] = [];
  const pixels = layout.image
    ? layout.image.height * layout.image.width * layout.image.channels
    : 0;
  rows.forEach((raw, row) => {
    if (raw === null || typeof raw !== 'object') {
      errors.push({ row, field: '', message: 'a row must be an object.' });

      return;
    }
    writeRow(
      plans,
      layout,
      out,
      row,
      (plan) => readJsonCell(plan, raw[plan.column], row, errors),
      (plan) => {
        const value = raw[plan.column];
        if (!isPixelArray(value) || value.length !== pixels) {
          errors.push({
            row,
            field: plan.column,
            message:
              `expected ${pixels} pixel values (${plan.height}x${plan.width}` +
              `x${plan.channels}, 0-255).`,
          });

          return;
        }
        for (let p = 0; p < pixels; p++) {
          out.image![row * pixels + p] = Number(value[p]) * plan.scale;
        }
      },
    );
  });

  return { features: out, errors };
}

function isPixelArray(value: unknown): value is ArrayLike<number> {
  return Array.isArray(value) || value instanceof Uint8Array;
}

function readJsonCell(
  plan: FeaturePlan,
  value: unknown,
  row: number,
  errors: RowError[],
): number | undefined {
  if (value === null || value === undefined || value === '') {
    return undefined;
  }
  if (plan.kind === 'numeric') {
    const number =
      typeof value === 'boolean' ? Number(value) : Number(value as string);
    if (
      (typeof value !== 'number' &&
        typeof value !== 'string' &&
        typeof value !== 'boolean') ||
      !Number.isFinite(number)
    ) {
      errors.push({
        row,
        field: plan.column,
        message: `expected a number, got ${JSON.stringify(value)}.`,
      });

      return undefined;
    }

    return number;
  }
  if (plan.kind === 'categorical') {
    if (typeof value !== 'string' && typeof value !== 'number') {
      errors.push({
        row,
        field: plan.column,
        message: `expected one of the column's values as a string.`,
      });

      return undefined;
    }
    const index = plan.vocabulary.indexOf(String(value));

    return index < 0 ? undefined : index;
  }

  return undefined;
}
