import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from './backend';
import type { BalancingStrategy } from './balancing';
import { FEATURES, tabularDataset } from './testing/synthetic';
import { train } from './train';

const data = tabularDataset(600, 3);

async function run(strategy: BalancingStrategy) {
  const result = await train({
    spec: {
      features: FEATURES,
      backbone: { kind: 'mlp', widths: [16] },
      tasks: [
        { name: 'price', kind: 'regression', target: 'price', weight: 2 },
        { name: 'buys', kind: 'binary', target: 'buys', weight: 0.5 },
        { name: 'segment', kind: 'multiclass', target: 'segment' },
      ],
    },
    data: { schema: data.schema, train: data.batches },
    epochs: 4,
    batchSize: 32,
    optimizer: { kind: 'adam', learningRate: 0.01 },
    balancing: { strategy },
  });
  result.model.dispose();

  return result.history;
}

describe('loss balancing', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  const strategies: BalancingStrategy[] = [
    'fixed',
    'equal',
    'uncertainty',
    'gradnorm',
    'dwa',
    'pcgrad',
  ];
  it.each(strategies)(
    '%s improves every task on its initial loss',
    async (s) => {
      const history = await run(s);
      const first = history.steps[0].taskLosses;
      const last = history.epochs.at(-1)!.trainLoss;

      for (const task of ['price', 'buys', 'segment']) {
        expect(last[task], task).toBeLessThan(first[task] * 0.6);
      }
    },
  );

  it('records the effective weights each strategy used per step', async () => {
    const fixed = await run('fixed');
    const uncertainty = await run('uncertainty');
    const gradnorm = await run('gradnorm');
    const dwa = await run('dwa');
    const weightsAt = (h: typeof fixed, step: number) =>
      h.steps[step].taskWeights;

    expect(weightsAt(fixed, 10)).toEqual({ price: 2, buys: 0.5, segment: 1 });
    expect(weightsAt(uncertainty, 0)).toEqual({
      price: 1,
      buys: 1,
      segment: 1,
    });
    expect(weightsAt(uncertainty, 60).price).not.toBeCloseTo(1, 3);
    const g = weightsAt(gradnorm, 60);
    // GradNorm renormalises its weights to sum to the task count: 3.
    expect(g.price + g.buys + g.segment).toBeCloseTo(3, 4);
    expect(g.price).not.toBeCloseTo(1, 3);
    // DWA keeps weight 1 for two epochs (19 steps each), then adapts.
    expect(weightsAt(dwa, 37)).toEqual({ price: 1, buys: 1, segment: 1 });
    expect(weightsAt(dwa, 38).price).not.toBeCloseTo(1, 4);
  });
});
