import {
  poolMoments,
  type ArtifactManifest,
  type FeaturePlan,
} from '#libs/training';

import type { ArtifactMetadata, LayerJson } from './artifact-reader';
import { IncompatibleModelsError } from './errors';

/**
 * Rewrites values of one weight of one source in place: `values` are the
 * weight's values from index `offset` on. A source's weights must be passed
 * in its own weights.bin order.
 */
export type WeightRewrite = (
  name: string,
  offset: number,
  values: Float32Array,
) => void;

/** How the sources of a merge are brought to one set of statistics. */
export interface Restandardisation {
  /** The merged manifest's features, numeric ones with pooled statistics. */
  features: FeaturePlan[];
  /** Pooled target statistics of each regression task. */
  targets: Map<string, { mean: number; std: number }>;
  /**
   * Per source, the rewrite that makes its weights read inputs (and give
   * regression outputs) in the pooled statistics; undefined for a source
   * whose statistics are the pooled ones already.
   */
  rewrites: (WeightRewrite | undefined)[];
}

type Numeric = Extract<FeaturePlan, { kind: 'numeric' }>;

/** A numeric input of the tabular features: its row among them. */
interface NumericRow {
  feature: number;
  row: number;
  /** The row of its missing indicator, if it has one. */
  indicator?: number;
}

/**
 * Makes the sources of a merge agree on standardisation. Each source
 * standardised a numeric input x as (x - m_k) / s_k and gives a regression
 * output as y · s_k + m_k, with statistics from its own data. Averaging
 * weights learnt against different statistics would mix inputs on different
 * scales, so each source is first re-expressed, exactly, in statistics
 * pooled over all sources (weighted by `weights`, as if their rows were
 * pooled): with x_k = (s / s_k) · x + (m - m_k) / s_k, every layer that reads
 * the tabular inputs gets its kernel rows scaled by s / s_k and the shift
 * added to its bias (or taken from the moving mean of the batch
 * normalisation after it), a missing indicator's row takes back the shift
 * (a missing value reads 0 in every source); a regression head's logits
 * are scaled by s_k / s and shifted by (m_k - m) / s.
 *
 * Throws IncompatibleModelsError when statistics differ and a layer that
 * reads the inputs cannot take the shift (a residual connection straight
 * from the inputs, a dense layer with neither bias nor normalisation).
 */
export function planRestandardisation(
  models: readonly ArtifactMetadata[],
  weights: readonly number[],
): Restandardisation {
  const [first] = models;
  const features = first.manifest.features.map((feature, f) => {
    if (feature.kind !== 'numeric') {
      return feature;
    }
    const groups = models.map((model, k) => {
      const own = model.manifest.features[f] as Numeric;

      return { mean: own.mean, std: own.std, weight: weights[k] };
    });

    return { ...feature, ...pool(groups) };
  });
  const targets = new Map<string, { mean: number; std: number }>();
  for (const model of models) {
    for (const task of model.manifest.tasks) {
      if (task.kind !== 'regression' || targets.has(task.name)) {
        continue;
      }
      const holders = models.flatMap((m, k) => {
        const own = m.manifest.tasks.find((t) => t.name === task.name);

        return own ? [{ k, mean: own.targetMean, std: own.targetStd }] : [];
      });
      targets.set(
        task.name,
        pool(holders.map((h) => ({ ...h, weight: weights[h.k] }))),
      );
    }
  }
  const rows = numericRows(first.manifest);
  const rewrites = models.map((model, k) =>
    rewriteFor(model, k, features, targets, rows),
  );

  return { features, targets, rewrites };
}

/** Mean and std of the union of groups with these statistics and weights. */
function pool(groups: { mean: number; std: number; weight: number }[]): {
  mean: number;
  std: number;
} {
  const pooled = poolMoments(groups);
  const same = groups.every(
    (g) => g.mean === pooled.mean && g.std === pooled.std,
  );

  return same || pooled.std > 1e-12 ? pooled : { mean: pooled.mean, std: 1 };
}

/** The rows of the numeric inputs among the tabular inputs. */
function numericRows(manifest: ArtifactManifest): NumericRow[] {
  const rows: NumericRow[] = [];
  let row = 0;
  manifest.features.forEach((feature, f) => {
    if (feature.kind === 'numeric') {
      rows.push({
        feature: f,
        row,
        indicator: feature.missingIndicator ? row + 1 : undefined,
      });
      row += feature.missingIndicator ? 2 : 1;
    } else if (
      feature.kind === 'categorical' &&
      feature.encoding === 'onehot'
    ) {
      row += feature.vocabulary.length + 1;
    }
  });

  return rows;
}

/** A numeric row of a source that changes: x_k = scale · x + shift. */
interface RowChange {
  scale: number;
  shift: number;
  indicator?: number;
}

function rewriteFor(
  model: ArtifactMetadata,
  k: number,
  features: readonly FeaturePlan[],
  targets: Map<string, { mean: number; std: number }>,
  rows: readonly NumericRow[],
): WeightRewrite | undefined {
  const changes = new Map<number, RowChange>();
  for (const { feature: f, row, indicator } of rows) {
    const own = model.manifest.features[f] as Numeric;
    const merged = features[f] as Numeric;
    if (own.mean !== merged.mean || own.std !== merged.std) {
      changes.set(row, {
        scale: merged.std / own.std,
        shift: (merged.mean - own.mean) / own.std,
        indicator,
      });
    }
  }
  const heads = new Map<string, { scale: number; shift: number }>();
  for (const task of model.manifest.tasks) {
    const merged = targets.get(task.name);
    if (
      task.kind === 'regression' &&
      merged &&
      (task.targetMean !== merged.mean || task.targetStd !== merged.std)
    ) {
      heads.set(`head/${task.name}/logits`, {
        scale: task.targetStd / merged.std,
        shift: (task.targetMean - merged.mean) / merged.std,
      });
    }
  }
  if (changes.size === 0 && heads.size === 0) {
    return undefined;
  }
  const readers = changes.size > 0 ? inputReaders(model, k, changes) : [];
  const byKernel = new Map(readers.map((r) => [r.kernel, r]));
  const byAbsorb = new Map(readers.map((r) => [r.absorb.name, r]));
  const indicators = new Set(
    [...changes.values()].flatMap((c) =>
      c.indicator === undefined ? [] : [c.indicator],
    ),
  );

  // In this order: a head's logits may read the inputs themselves.
  return (name, offset, values) => {
    const reader = byKernel.get(name);
    if (reader) {
      rewriteKernel(reader, changes, indicators, offset, values);
    }
    const absorbing = byAbsorb.get(name);
    if (absorbing) {
      if (absorbing.rowsSeen < absorbing.rows) {
        throw new Error(`${name} came before the whole of its kernel.`);
      }
      const { sign } = absorbing.absorb;
      for (let i = 0; i < values.length; i++) {
        values[i] += sign * absorbing.shift[offset + i];
      }
    }
    const head = heads.get(name.replace(/\/(kernel|bias)$/, ''));
    if (head && name.endsWith('/kernel')) {
      values.forEach((v, i) => (values[i] = v * head.scale));
    } else if (head) {
      values.forEach((v, i) => (values[i] = v * head.scale + head.shift));
    }
  };
}

/** A dense layer that reads the tabular inputs, and where its shift goes. */
interface InputReader {
  kernel: string;
  units: number;
  rows: number;
  /** Row of the kernel of the first tabular input. */
  tabularStart: number;
  /** Added to the bias (+1) or taken from the moving mean (-1). */
  absorb: { name: string; sign: 1 | -1 };
  /** Σ over rows of kernel row × shift, per unit; filled as rows pass. */
  shift: Float64Array;
  /** Per unit, the last numeric row's kernel × shift, for its indicator. */
  pending: Float64Array;
  rowsSeen: number;
}

/** The names a layer takes its inputs from. */
function inboundNames(layer: LayerJson): string[] {
  const names: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      if (typeof node[0] === 'string') {
        names.push(node[0]);
      } else {
        node.forEach(walk);
      }
    }
  };
  walk(layer.inbound_nodes);

  return names;
}

/**
 * Every layer that reads the tabular inputs (the `input/tabular` input or
 * the `backbone/concat` of all inputs), each a dense layer whose shift has
 * somewhere to go.
 */
function inputReaders(
  model: ArtifactMetadata,
  k: number,
  changes: Map<number, RowChange>,
): InputReader[] {
  const { manifest, specs } = model;
  const layers = model.modelJson.modelTopology.config.layers;
  // With other inputs too, the concatenation of all is what layers read.
  const source = layers.some((l) => l.name === 'backbone/concat')
    ? 'backbone/concat'
    : 'input/tabular';
  const embeddingWidth = manifest.features.reduce(
    (n, f) =>
      f.kind === 'categorical' && f.encoding === 'embedding'
        ? n + f.embeddingDim
        : n,
    0,
  );
  const cannot = (why: string) => {
    const row = [...changes.keys()][0];
    const feature = numericRows(manifest).find((r) => r.row === row)!.feature;
    const plan = manifest.features[feature] as Numeric;

    return new IncompatibleModelsError(
      `features[${feature}]`,
      `source ${k + 1}: numeric ${plan.column} was standardised with ` +
        `mean ${plan.mean} and std ${plan.std}, unlike the merge's pooled ` +
        `statistics, and ${why}, so its weights cannot be brought to ` +
        'common statistics.',
    );
  };
  const readers = layers.filter((layer) =>
    inboundNames(layer).includes(source),
  );
  if (readers.length === 0) {
    throw cannot('no layer of the model reads the tabular inputs');
  }

  return readers.map((layer): InputReader => {
    if (layer.class_name !== 'Dense') {
      throw cannot(`layer ${layer.name} (${layer.class_name}) reads them`);
    }
    const kernel = specs.find((s) => s.name === `${layer.name}/kernel`);
    const bias = specs.find((s) => s.name === `${layer.name}/bias`);
    const norm = layers.find(
      (l) =>
        l.class_name === 'BatchNormalization' &&
        inboundNames(l).includes(layer.name),
    );
    const movingMean = norm
      ? specs.find((s) => s.name === `${norm.name}/moving_mean`)
      : undefined;
    const absorb = bias
      ? { name: bias.name, sign: 1 as const }
      : movingMean
        ? { name: movingMean.name, sign: -1 as const }
        : undefined;
    if (!kernel || kernel.shape.length !== 2 || !absorb) {
      throw cannot(
        `layer ${layer.name} has no bias and no normalisation after it`,
      );
    }
    const [rows, units] = kernel.shape;
    const tabularStart = rows - manifest.layout.tabularWidth - embeddingWidth;
    if (tabularStart < 0) {
      throw cannot(`layer ${layer.name} has ${rows} input rows, too few`);
    }

    return {
      kernel: kernel.name,
      units,
      rows,
      tabularStart,
      absorb,
      shift: new Float64Array(units),
      pending: new Float64Array(units),
      rowsSeen: 0,
    };
  });
}

/** Scales the changed rows of a kernel block and collects their shift. */
function rewriteKernel(
  reader: InputReader,
  changes: Map<number, RowChange>,
  indicators: Set<number>,
  offset: number,
  values: Float32Array,
): void {
  const { units, tabularStart, shift, pending } = reader;
  const end = offset + values.length;
  for (let row = Math.floor(offset / units); row * units < end; row++) {
    const from = Math.max(row * units, offset);
    const to = Math.min((row + 1) * units, end);
    const change = changes.get(row - tabularStart);
    if (change) {
      for (let g = from; g < to; g++) {
        const u = g - row * units;
        const w = values[g - offset];
        shift[u] += w * change.shift;
        pending[u] = w * change.shift;
        values[g - offset] = w * change.scale;
      }
    } else if (indicators.has(row - tabularStart)) {
      for (let g = from; g < to; g++) {
        values[g - offset] -= pending[g - row * units];
      }
    }
    if (to === (row + 1) * units) {
      reader.rowsSeen = row + 1;
    }
  }
}
