import { describe, expect, it } from 'vitest';

import { TrainingConfigError } from './errors';
import { FEATURES, tabularDataset } from './testing/synthetic';
import { train } from './train';
import type { TrainOptions } from './train-options';

const data = tabularDataset(64, 51);

function options(change: (o: TrainOptions) => void): TrainOptions {
  const o: TrainOptions = {
    spec: {
      features: [...FEATURES],
      backbone: { kind: 'mlp', widths: [8] },
      tasks: [{ name: 'price', kind: 'regression', target: 'price' }],
    },
    data: { schema: data.schema, train: data.batches },
    epochs: 1,
  };
  change(o);

  return o;
}

async function fieldOf(o: TrainOptions): Promise<string> {
  try {
    await train(o);
  } catch (error) {
    expect(error).toBeInstanceOf(TrainingConfigError);

    return (error as TrainingConfigError).field;
  }
  throw new Error('train accepted invalid options');
}

describe('option validation', () => {
  it.each([
    ['epochs', (o: TrainOptions) => (o.epochs = 0)],
    ['batchSize', (o: TrainOptions) => (o.batchSize = 2.5)],
    [
      'spec.features[0].column',
      (o: TrainOptions) => (o.spec.features[0] = 'nope'),
    ],
    [
      'spec.tasks[0].kind',
      (o: TrainOptions) => ((o.spec.tasks[0].kind as string) = 'ranking'),
    ],
    [
      'spec.tasks[0].target',
      (o: TrainOptions) => (o.spec.tasks[0].target = 'missing'),
    ],
    [
      'spec.tasks[0].target',
      (o: TrainOptions) => (o.spec.tasks[0].target = 'x1'),
    ],
    [
      'spec.tasks[0].name',
      (o: TrainOptions) => (o.spec.tasks[0].name = 'bad name'),
    ],
    [
      'spec.backbone.widths',
      (o: TrainOptions) => (o.spec.backbone = { kind: 'mlp', widths: [0] }),
    ],
    [
      'spec.backbone.dropout',
      (o: TrainOptions) =>
        (o.spec.backbone = { kind: 'mlp', widths: [4], dropout: 1 }),
    ],
    [
      'optimizer.kind',
      (o: TrainOptions) => (o.optimizer = { kind: 'rmsprop' as 'adam' }),
    ],
    [
      'optimizer.learningRate',
      (o: TrainOptions) => (o.optimizer = { kind: 'adam', learningRate: -1 }),
    ],
    ['schedule.stepSize', (o: TrainOptions) => (o.schedule = { kind: 'step' })],
    [
      'balancing.strategy',
      (o: TrainOptions) => (o.balancing = { strategy: 'mgda' as 'equal' }),
    ],
    [
      'augmentation.tabular.featureDropout',
      (o: TrainOptions) =>
        (o.augmentation = { tabular: { featureDropout: 2 } }),
    ],
    [
      'spec.tasks[1].name',
      (o: TrainOptions) => o.spec.tasks.push({ ...o.spec.tasks[0] }),
    ],
    ['shuffleBuffer', (o: TrainOptions) => (o.shuffleBuffer = -1)],
    [
      'earlyStopping.monitor',
      (o: TrainOptions) => (o.earlyStopping = { monitor: 'price.auc' }),
    ],
    [
      'earlyStopping.monitor',
      (o: TrainOptions) => (o.earlyStopping = { monitor: 'nope.rmse' }),
    ],
    [
      'spec.tasks[0].source',
      (o: TrainOptions) => (o.spec.tasks[0].source = 'elsewhere'),
    ],
  ])('names %s', async (field, change) => {
    expect(await fieldOf(options(change))).toBe(field);
  });

  it('says what would be valid', async () => {
    const o = options((x) => (x.optimizer = { kind: 'rmsprop' as 'adam' }));

    await expect(train(o)).rejects.toThrow(
      'optimizer.kind: "rmsprop" is not supported; use adam, adamw or sgd.',
    );
  });

  it('asks for a stream factory when a one-shot stream runs dry', async () => {
    const oneShot = data.batches();
    const o = options((x) => {
      x.epochs = 2;
      x.data = {
        schema: data.schema,
        train: data.batches,
        validation: oneShot,
      };
    });

    expect(await fieldOf(o)).toBe('data[0].validation');
  });
});
