import type { DataSourceOptions } from './data';
import { TrainingConfigError } from './errors';
import type { ModelPlan } from './model';
import { inputLayout, planFeatures } from './preprocessing';
import type { ModelSpec } from './spec';
import { planTask } from './tasks';

/**
 * Resolves a spec against the data: feature preprocessing from the first
 * source's schema, each task against the source that carries its labels.
 * `taskSources[t][s]` says whether source s has labels for task t.
 */
export function planModel(
  spec: ModelSpec,
  sources: DataSourceOptions[],
): { plan: ModelPlan; taskSources: boolean[][] } {
  const features = planFeatures(spec.features, sources[0].schema);
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

    return planTask(task, sources[first].schema, field);
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
