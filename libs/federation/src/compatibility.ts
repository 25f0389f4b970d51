import type { ArtifactManifest } from '#libs/training';

import type { ArtifactMetadata, LayerJson } from './artifact-reader';
import { IncompatibleModelsError } from './errors';
import { formatShape, headTask, sameShape, type WeightSpec } from './tensors';

type FeaturePlan = ArtifactManifest['features'][number];

/**
 * Checks that models can be merged: the same input features (standardisation
 * statistics aside) and layout, the same backbone weights and layer types,
 * and for each task that several have, the same kind, labels and head
 * weights. Throws IncompatibleModelsError naming the first difference.
 */
export function checkCompatible(models: readonly ArtifactMetadata[]): void {
  const [first] = models;
  models.slice(1).forEach((model, i) => {
    const k = i + 2;
    checkFeatures(first.manifest, model.manifest, k);
    checkSpecs(
      first.specs.filter((s) => !headTask(s.name)),
      model.specs.filter((s) => !headTask(s.name)),
      k,
      1,
    );
    checkLayers(first.modelJson.modelTopology.config.layers, model, k);
  });
  const owners = new Map<string, number>();
  models.forEach((model, i) => {
    for (const task of model.manifest.tasks) {
      const owner = owners.get(task.name);
      if (owner === undefined) {
        owners.set(task.name, i);
        continue;
      }
      checkTask(models[owner], model, task.name, i + 1, owner + 1);
    }
  });
}

function checkFeatures(
  first: ArtifactManifest,
  other: ArtifactManifest,
  k: number,
): void {
  const count = Math.max(first.features.length, other.features.length);
  for (let f = 0; f < count; f++) {
    const a = first.features[f];
    const b = other.features[f];
    if (!a || !b || describe(a) !== describe(b)) {
      throw new IncompatibleModelsError(
        `features[${f}]`,
        `source ${k}: input feature ${f} is ${b ? describe(b) : 'absent'}, ` +
          `source 1 has ${a ? describe(a) : 'none'}.`,
      );
    }
  }
  if (JSON.stringify(first.layout) !== JSON.stringify(other.layout)) {
    throw new IncompatibleModelsError(
      'layout',
      `source ${k}: the input layout ${JSON.stringify(other.layout)} ` +
        `differs from source 1's ${JSON.stringify(first.layout)}.`,
    );
  }
}

/** A feature without its standardisation statistics, which may differ. */
function describe(feature: FeaturePlan): string {
  switch (feature.kind) {
    case 'numeric':
      return (
        `numeric ${feature.column}` +
        (feature.missingIndicator ? ' with a missing indicator' : '')
      );
    case 'categorical':
      return (
        `categorical ${feature.column} (${feature.encoding}` +
        (feature.encoding === 'embedding' ? ` ${feature.embeddingDim}` : '') +
        `, vocabulary ${JSON.stringify(feature.vocabulary)})`
      );
    case 'image':
      return (
        `image ${feature.column} ${feature.height}x${feature.width}x` +
        `${feature.channels} scaled ${feature.scale}`
      );
  }
}

function checkSpecs(
  reference: readonly WeightSpec[],
  other: readonly WeightSpec[],
  k: number,
  r: number,
): void {
  const count = Math.max(reference.length, other.length);
  for (let i = 0; i < count; i++) {
    const a = reference[i];
    const b = other[i];
    if (!b) {
      throw new IncompatibleModelsError(
        `weights.${a.name}`,
        `source ${k}: has no layer ${a.name}, source ${r} has ` +
          `${formatShape(a.shape)}.`,
      );
    }
    if (!a) {
      throw new IncompatibleModelsError(
        `weights.${b.name}`,
        `source ${k}: layer ${b.name} is not in source ${r}.`,
      );
    }
    if (a.name !== b.name) {
      throw new IncompatibleModelsError(
        `weights.${a.name}`,
        `source ${k}: layer ${i} is ${b.name}, source ${r} has ${a.name}.`,
      );
    }
    if (!sameShape(a.shape, b.shape)) {
      throw new IncompatibleModelsError(
        `weights.${a.name}`,
        `source ${k}: layer ${a.name} has shape ${formatShape(b.shape)}, ` +
          `source ${r} has ${formatShape(a.shape)}.`,
      );
    }
  }
}

/** Backbone layers must be of the same class with the same activation. */
function checkLayers(
  reference: readonly LayerJson[],
  other: ArtifactMetadata,
  k: number,
): void {
  const layers = new Map(
    other.modelJson.modelTopology.config.layers.map((l) => [l.name, l]),
  );
  for (const a of reference) {
    if (headTask(`${a.name}/`)) {
      continue;
    }
    const b = layers.get(a.name);
    const kind = (l: LayerJson) =>
      `${l.class_name}${l.config.activation ? ` ${String(l.config.activation)}` : ''}`;
    if (!b || kind(a) !== kind(b)) {
      throw new IncompatibleModelsError(
        `layers.${a.name}`,
        `source ${k}: layer ${a.name} is ${b ? kind(b) : 'absent'}, ` +
          `source 1 has ${kind(a)}.`,
      );
    }
  }
}

function checkTask(
  reference: ArtifactMetadata,
  other: ArtifactMetadata,
  task: string,
  k: number,
  r: number,
): void {
  const a = reference.manifest.tasks.find((t) => t.name === task)!;
  const b = other.manifest.tasks.find((t) => t.name === task)!;
  if (
    a.kind !== b.kind ||
    JSON.stringify(a.labels) !== JSON.stringify(b.labels)
  ) {
    throw new IncompatibleModelsError(
      `tasks.${task}`,
      `source ${k}: task ${task} is ${b.kind} over ${JSON.stringify(b.labels)}, ` +
        `source ${r} has ${a.kind} over ${JSON.stringify(a.labels)}.`,
    );
  }
  const head = (m: ArtifactMetadata) =>
    m.specs.filter((s) => headTask(s.name) === task);
  checkSpecs(head(reference), head(other), k, r);
}
