import type { ArtifactManifest } from './artifact';
import type { DataSourceOptions } from './data';
import { TrainingConfigError } from './errors';
import type { ModelPlan } from './model';
import { SourcePool, type WantedColumn } from './pooled-schema';
import { inputLayout, planFeatures } from './preprocessing';
import type { ModelSpec } from './spec';
import { planTask } from './tasks';

/**
 * Standardisation statistics of a model that weights are loaded from: the
 * features and tasks of its manifest.
 */
export type BaseStatistics = Pick<ArtifactManifest, 'features' | 'tasks'>;

/**
 * Resolves a spec against the data. Feature preprocessing comes from the
 * statistics of every source pooled, as if their rows were one dataset
 * (each input column must then be in every source); each task from those
 * of the sources that carry its labels. `taskSources[t][s]` says whether
 * source s has labels for task t. A categorical column's values are the
 * union over the sources it is pooled over, the first one's first; the
 * returned `sources` are the given ones with each batch's codes translated
 * onto those values. With one source its schema is used as it is.
 *
 * With `base`, the model starts from weights trained with those statistics:
 * each numeric feature and regression target it shares with the base keeps
 * the base's mean and std, so the loaded weights read inputs (and give
 * outputs) on the scale they were trained on, whatever this data's own.
 */
export function planModel(
  spec: ModelSpec,
  sources: DataSourceOptions[],
  base?: BaseStatistics,
): {
  plan: ModelPlan;
  taskSources: boolean[][];
  sources: DataSourceOptions[];
} {
  const names = sources.map(
    (s, i) => s.name ?? (i === 0 ? 'default' : `source${i}`),
  );
  const named = sources.map((s, i) => ({ name: names[i], schema: s.schema }));
  const pool = new SourcePool(named);
  const inputs = inputColumns(spec.features);
  for (const { column, field } of inputs) {
    const holds = named.map((s) =>
      s.schema.columns.some((c) => c.name === column),
    );
    const lacking = holds.indexOf(false);
    if (lacking >= 0 && holds.includes(true)) {
      throw new TrainingConfigError(
        field,
        `column "${column}" is not in source "${names[lacking]}"; every ` +
          'input column must be in every source.',
      );
    }
  }
  const keptInputs = new Map(
    (base?.features ?? []).flatMap((f) =>
      f.kind === 'categorical' ? [[f.column, f.vocabulary]] : [],
    ),
  );
  const features = planFeatures(
    spec.features,
    pool.schema(
      sources.map((_, i) => i),
      inputs,
      keptInputs,
    ),
  ).map((feature) => {
    const kept = base?.features.find(
      (f) => f.kind === 'numeric' && f.column === feature.column,
    );

    return feature.kind === 'numeric' && kept?.kind === 'numeric'
      ? { ...feature, mean: kept.mean, std: kept.std }
      : feature;
  });
  const taskSources: boolean[][] = [];
  const tasks = spec.tasks.map((task, t) => {
    const field = `spec.tasks[${t}]`;
    const targets = Array.isArray(task.target) ? task.target : [task.target];
    const carries = sources.map((source, s) =>
      task.source !== undefined
        ? names[s] === task.source
        : targets.every((column) =>
            source.schema.columns.some((c) => c.name === column),
          ),
    );
    const first = carries.indexOf(true);
    if (first < 0) {
      throw new TrainingConfigError(
        task.source !== undefined ? `${field}.source` : `${field}.target`,
        task.source !== undefined
          ? `no source is named "${task.source}"; sources are ${names.join(', ')}.`
          : `no source has the column(s) ${targets.join(', ')}.`,
      );
    }
    taskSources.push(carries);
    const kept = base?.tasks.find(
      (t) =>
        t.name === task.name &&
        t.kind === task.kind &&
        t.columns.join('\n') === targets.join('\n'),
    );
    const keptLabels = new Map(
      kept && kept.kind !== 'regression' && kept.kind !== 'multilabel'
        ? [[targets[0], kept.labels]]
        : [],
    );
    const planned = planTask(
      task,
      pool.schema(
        carries.flatMap((carried, i) => (carried ? [i] : [])),
        targets.map((column) => ({ column, field: `${field}.target` })),
        keptLabels,
      ),
      field,
    );

    return planned.kind === 'regression' && kept
      ? { ...planned, targetMean: kept.targetMean, targetStd: kept.targetStd }
      : planned;
  });
  const reserved = new Set(features.map((f) => f.column));
  tasks.forEach((task, t) => {
    const clash = task.columns.find((column) => reserved.has(column));
    if (clash) {
      throw new TrainingConfigError(
        `spec.tasks[${t}].target`,
        `column "${clash}" is also an input feature; a target cannot be an input.`,
      );
    }
  });

  return {
    plan: {
      features,
      layout: inputLayout(features),
      backbone: structuredClone(spec.backbone),
      tasks,
    },
    taskSources,
    sources: pool.recode(sources),
  };
}

/** The columns the spec's features read, with the field naming each. */
function inputColumns(features: ModelSpec['features']): WantedColumn[] {
  return (Array.isArray(features) ? features : []).flatMap((entry, i) => {
    const column = typeof entry === 'string' ? entry : entry?.column;

    return typeof column === 'string'
      ? [{ column, field: `spec.features[${i}].column` }]
      : [];
  });
}
