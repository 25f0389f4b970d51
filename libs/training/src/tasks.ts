import type { ColumnSchema, DatasetSchema } from '#libs/datasets';

import { TrainingConfigError } from './errors';
import type { RowRef } from './preprocessing';
import type { TaskKind, TaskOptions } from './spec';

/** A task resolved against its dataset; stored in the manifest. */
export interface TaskPlan {
  name: string;
  kind: TaskKind;
  /** Target columns (one, or one per label for multilabel). */
  columns: string[];
  /** Output units of the head. */
  units: number;
  /** Class or label names; empty for regression. */
  labels: string[];
  /** Regression: the target is learned standardised, (y - mean) / std. */
  targetMean: number;
  targetStd: number;
  /** Binary with a categorical target: the code counted as positive. */
  positiveCode?: number;
  /** Per-class loss weights, or undefined for none. */
  classWeights?: number[];
  loss: 'mse' | 'huber';
  huberDelta: number;
  labelSmoothing: number;
  topK: number;
  hidden: number[];
  weight: number;
  source?: string;
}

/** Labels for a run of rows: dense floats and a 0/1 mask. */
export interface EncodedLabels {
  /** size x units: the standardised value, 0/1, one-hot or multi-hot. */
  values: Float32Array;
  /** size x 1 (multilabel: size x units); 0 where the label is missing. */
  mask: Float32Array;
}

const NAME = /^[A-Za-z0-9][-A-Za-z0-9._]*$/;
const KINDS: TaskKind[] = ['regression', 'binary', 'multiclass', 'multilabel'];

export function planTask(
  options: TaskOptions,
  schema: DatasetSchema,
  field: string,
): TaskPlan {
  if (typeof options.name !== 'string' || !NAME.test(options.name)) {
    throw new TrainingConfigError(
      `${field}.name`,
      'use letters, digits, "-", "_" and "." (starting with a letter or digit).',
    );
  }
  if (!KINDS.includes(options.kind)) {
    throw new TrainingConfigError(
      `${field}.kind`,
      `"${options.kind}" is not a task kind; use ${KINDS.join(', ')}.`,
    );
  }
  const targets = Array.isArray(options.target)
    ? options.target
    : [options.target];
  if (
    targets.length === 0 ||
    (options.kind !== 'multilabel' && targets.length > 1)
  ) {
    throw new TrainingConfigError(
      `${field}.target`,
      options.kind === 'multilabel'
        ? 'name one 0/1 column per label.'
        : 'name exactly one target column.',
    );
  }
  const columns = targets.map((name) => findColumn(schema, name, field));
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) {
    throw new TrainingConfigError(
      `${field}.labelSmoothing`,
      'use a value in [0, 1).',
    );
  }
  const base = {
    name: options.name,
    kind: options.kind,
    columns: targets,
    targetMean: 0,
    targetStd: 1,
    loss: options.loss ?? 'mse',
    huberDelta: options.huberDelta ?? 1,
    labelSmoothing: smoothing,
    topK: options.topK ?? 3,
    hidden: options.hidden ?? [],
    weight: options.weight ?? 1,
    source: options.source,
  } as const;
  const column = columns[0];
  switch (options.kind) {
    case 'regression': {
      requireNumeric(column, `${field}.target`);
      const std = column.statistics.std ?? 1;

      return {
        ...base,
        units: 1,
        labels: [],
        targetMean: column.statistics.mean ?? 0,
        targetStd: std > 1e-12 ? std : 1,
      };
    }
    case 'binary': {
      const plan: TaskPlan = { ...base, units: 1, labels: ['0', '1'] };
      if (column.type === 'categorical') {
        const vocabulary = column.vocabulary ?? [];
        const positive = options.positiveLabel ?? vocabulary[1];
        const code = vocabulary.indexOf(positive);
        if (vocabulary.length !== 2 || code < 0) {
          throw new TrainingConfigError(
            `${field}.positiveLabel`,
            `a binary target needs two values and a positive label among ` +
              `them; "${column.name}" has ${vocabulary.join(', ')}.`,
          );
        }
        plan.positiveCode = code;
        plan.labels = [vocabulary[1 - code], positive];
      } else {
        requireNumeric(column, `${field}.target`);
      }
      plan.classWeights = classWeights(options, plan, column, field);

      return plan;
    }
    case 'multiclass': {
      let labels: string[];
      if (column.type === 'categorical') {
        labels = [...(column.vocabulary ?? [])];
      } else {
        requireNumeric(column, `${field}.target`);
        const max = column.statistics.max ?? 0;
        labels = Array.from({ length: Math.round(max) + 1 }, (_, i) =>
          String(i),
        );
      }
      if (labels.length < 2) {
        throw new TrainingConfigError(
          `${field}.target`,
          `a multiclass target needs at least 2 classes; "${column.name}" ` +
            `has ${labels.length}.`,
        );
      }
      const plan: TaskPlan = { ...base, units: labels.length, labels };
      plan.classWeights = classWeights(options, plan, column, field);

      return plan;
    }
    case 'multilabel':
      columns.forEach((c) => requireNumeric(c, `${field}.target`));

      return { ...base, units: targets.length, labels: [...targets] };
  }
}

function findColumn(
  schema: DatasetSchema,
  name: string,
  field: string,
): ColumnSchema {
  const column = schema.columns.find((c) => c.name === name);
  if (!column) {
    throw new TrainingConfigError(
      `${field}.target`,
      `column "${name}" is not in the dataset; columns are ` +
        `${schema.columns.map((c) => c.name).join(', ')}.`,
    );
  }

  return column;
}

function requireNumeric(column: ColumnSchema, field: string): void {
  if (!['numeric', 'integer', 'boolean'].includes(column.type)) {
    throw new TrainingConfigError(
      field,
      `column "${column.name}" is ${column.type}; this task needs a numeric, ` +
        'integer or boolean column.',
    );
  }
}

function classWeights(
  options: TaskOptions,
  plan: TaskPlan,
  column: ColumnSchema,
  field: string,
): number[] | undefined {
  const given = options.classWeights;
  const classes = plan.kind === 'binary' ? 2 : plan.units;
  if (given === undefined) {
    return undefined;
  }
  if (Array.isArray(given)) {
    if (
      given.length !== classes ||
      given.some((w) => !Number.isFinite(w) || w < 0)
    ) {
      throw new TrainingConfigError(
        `${field}.classWeights`,
        `give ${classes} non-negative weights, one per class in order ` +
          `${plan.labels.join(', ')}.`,
      );
    }

    return [...given];
  }
  if (given !== 'balanced') {
    throw new TrainingConfigError(
      `${field}.classWeights`,
      'use an array of weights or "balanced".',
    );
  }
  const counts = new Array<number>(classes).fill(1);
  if (column.type === 'categorical') {
    for (const { value, count } of column.statistics.top ?? []) {
      const index = (column.vocabulary ?? []).indexOf(value);
      const cls =
        plan.kind === 'binary' ? Number(index === plan.positiveCode) : index;
      if (index >= 0) {
        counts[cls] += count;
      }
    }
  } else if (plan.kind === 'binary') {
    const n = column.statistics.count;
    const positive = (column.statistics.mean ?? 0.5) * n;
    counts[0] += n - positive;
    counts[1] += positive;
  } else {
    for (const { value, count } of column.statistics.top ?? []) {
      const index = Math.round(Number(value));
      if (index >= 0 && index < classes) {
        counts[index] += count;
      }
    }
  }
  const total = counts.reduce((a, b) => a + b, 0);

  return counts.map((count) => total / (classes * count));
}

/** Encodes the labels of `task` for rows; a missing label gets mask 0. */
export function encodeLabels(task: TaskPlan, rows: RowRef[]): EncodedLabels {
  const size = rows.length;
  const units = task.units;
  const values = new Float32Array(size * units);
  const mask = new Float32Array(
    task.kind === 'multilabel' ? size * units : size,
  );
  rows.forEach(({ batch, index }, row) => {
    if (task.kind === 'multilabel') {
      task.columns.forEach((name, label) => {
        const value = batch.columns[name]?.[index];
        if (value !== undefined && !Number.isNaN(value)) {
          values[row * units + label] = value > 0.5 ? 1 : 0;
          mask[row * units + label] = 1;
        }
      });

      return;
    }
    const data = batch.columns[task.columns[0]];
    const value = data?.[index];
    if (
      value === undefined ||
      Number.isNaN(value) ||
      (data instanceof Int32Array && value < 0)
    ) {
      return;
    }
    mask[row] = 1;
    if (task.kind === 'regression') {
      values[row] = (value - task.targetMean) / task.targetStd;
    } else if (task.kind === 'binary') {
      values[row] =
        task.positiveCode !== undefined
          ? Number(value === task.positiveCode)
          : Number(value > 0.5);
    } else {
      const cls = Math.round(value);
      if (cls >= 0 && cls < units) {
        values[row * units + cls] = 1;
      } else {
        mask[row] = 0;
      }
    }
  });

  return { values, mask };
}
