import type { ArtifactManifest } from './artifact';
import type { DataSourceOptions } from './data';
import { TrainingConfigError } from './errors';
import type { ModelPlan } from './model';
import { inputLayout, planFeatures } from './preprocessing';
import type { ModelSpec } from './spec';
import { planTask } from './tasks';

/**
 * Standardisation statistics of a model that weights are loaded from: the
 * features and tasks of its manifest.
 */
export type BaseStatistics = Pick<ArtifactManifest, 'features' | 'tasks'>;

/**
 * Resolves a spec against the data: feature preprocessing from the first
 * source's schema, each task against the source that carries its labels.
 * `taskSources[t][s]` says whether source s has labels for task t.
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
): { plan: ModelPlan; taskSources: boolean[][] } {
  const features = planFeatures(spec.features, sources[0].schema).map(
    (feature) => {
      const kept = base?.features.find(
        (f) => f.kind === 'numeric' && f.column === feature.column,
      );

      return feature.kind === 'numeric' && kept?.kind === 'numeric'
        ? { ...feature, mean: kept.mean, std: kept.std }
        : feature;
    },
  );
  const names = sources.map(
    (s, i) => s.name ?? (i === 0 ? 'default' : `source${i}`),
  );
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
    const planned = planTask(task, sources[first].schema, field);
    const kept = base?.tasks.find(
      (t) =>
        t.name === planned.name &&
        t.kind === 'regression' &&
        t.columns.join('\n') === planned.columns.join('\n'),
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
  };
}
