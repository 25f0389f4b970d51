import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ObjectStorage } from '#libs/storage';
import { unzipArtifact, type Artifact } from '#libs/training';

import { aggregateRound, type AggregateRoundOptions } from './aggregate';
import type { NamedWeights } from './tensors';
import {
  BUYS,
  namedWeights,
  PRICE,
  putArtifact,
  readAll,
  readWeightsFile,
  startStorage,
  tinyArtifact,
} from './testing/fixtures';
import { encodeWeights } from './weights-file';

describe('aggregateRound', () => {
  let storage: ObjectStorage;
  let stop: () => Promise<void>;
  let global: Artifact;
  let size: number;

  beforeAll(async () => {
    ({ storage, stop } = await startStorage());
    global = await tinyArtifact({ tasks: [BUYS, PRICE], widths: [16] });
    await putArtifact(storage, 'round-0.zip', global);
    size = [...namedWeights(global).values()].reduce(
      (n, w) => n + w.values.length,
      0,
    );
  });

  afterAll(async () => {
    await stop();
  });

  /** Stores global + offset(name) as an update weights file. */
  async function update(
    key: string,
    from: Artifact,
    offset: (name: string) => number,
  ): Promise<string> {
    const bytes = encodeWeights(
      namedWeights(from, (v, name) => v + offset(name)),
    );
    await storage.put(key, bytes, bytes.length);

    return key;
  }

  async function aggregate(
    options: Partial<AggregateRoundOptions> &
      Pick<AggregateRoundOptions, 'updates' | 'outputKey'>,
  ) {
    const result = await aggregateRound(storage, {
      global: { key: 'round-0.zip' },
      strategy: 'fedavg',
      ...options,
    });
    const artifact = await unzipArtifact(
      await readAll(await storage.get(options.outputKey)),
    );

    return { result, artifact, weights: namedWeights(artifact) };
  }

  /** Each weight minus the global's, as one flat list per weight name. */
  const deltas = (weights: NamedWeights, from: NamedWeights) =>
    Object.fromEntries(
      [...weights].map(([name, w]) => [
        name,
        Array.from(w.values, (v, i) => v - from.get(name)!.values[i]),
      ]),
    );

  it('fedavg adds the sample-weighted mean of the deltas', async () => {
    const updates = [
      { key: await update('avg/1', global, () => 1), sampleCount: 100 },
      { key: await update('avg/2', global, () => 4), sampleCount: 300 },
    ];

    const { result, weights } = await aggregate({
      updates,
      outputKey: 'avg/out.zip',
    });

    // 0.25 * 1 + 0.75 * 4 = 3.25 on every weight.
    for (const values of Object.values(deltas(weights, namedWeights(global)))) {
      values.forEach((d) => expect(d).toBeCloseTo(3.25, 4));
    }
    expect(result.updateNorms[0]).toBeCloseTo(Math.sqrt(size), 3);
    expect(result.updateNorms[1]).toBeCloseTo(4 * Math.sqrt(size), 3);
    expect(result.noiseStd).toBe(0);
  });

  it('keeps the global heads with the backbone scope', async () => {
    const updates = [
      { key: await update('scope/1', global, () => 2), sampleCount: 1 },
    ];

    const { weights } = await aggregate({
      updates,
      scope: 'backbone',
      outputKey: 'scope/out.zip',
    });
    const before = namedWeights(global);

    expect(weights.get('head/buys/logits/kernel')).toEqual(
      before.get('head/buys/logits/kernel'),
    );
    expect(weights.get('head/price/logits/bias')).toEqual(
      before.get('head/price/logits/bias'),
    );
    expect(
      weights.get('backbone/dense_0/bias')!.values[0] -
        before.get('backbone/dense_0/bias')!.values[0],
    ).toBeCloseTo(2, 5);
  });

  it.each(['fedadam', 'fedyogi'] as const)(
    '%s carries its moments from one round to the next',
    async (strategy) => {
      const [b1, b2, lr, tau] = [0.9, 0.99, 0.01, 1e-3];
      // Round 1 sees a delta of 1 everywhere, round 2 a delta of 2.
      const m1 = (1 - b1) * 1;
      const v1 =
        strategy === 'fedadam'
          ? b2 * tau ** 2 + (1 - b2) * 1
          : tau ** 2 + (1 - b2) * 1;
      const m2 = b1 * m1 + (1 - b1) * 2;
      const v2 =
        strategy === 'fedadam' ? b2 * v1 + (1 - b2) * 4 : v1 + (1 - b2) * 4;
      const step1 = (lr * m1) / (Math.sqrt(v1) + tau);
      const step2 = (lr * m2) / (Math.sqrt(v2) + tau);

      const first = await aggregate({
        strategy,
        updates: [
          {
            key: await update(`${strategy}/1`, global, () => 1),
            sampleCount: 5,
          },
        ],
        serverState: null,
        outputKey: `${strategy}/round-1.zip`,
        stateOutputKey: `${strategy}/state-1`,
      });
      const second = await aggregateRound(storage, {
        global: { key: `${strategy}/round-1.zip` },
        strategy,
        updates: [
          {
            key: await update(`${strategy}/2`, first.artifact, () => 2),
            sampleCount: 5,
          },
        ],
        serverState: { key: first.result.stateKey! },
        outputKey: `${strategy}/round-2.zip`,
        stateOutputKey: `${strategy}/state-2`,
      });
      const roundTwo = namedWeights(
        await unzipArtifact(
          await readAll(await storage.get(`${strategy}/round-2.zip`)),
        ),
      );
      const state = await readWeightsFile(storage, second.stateKey!);
      const name = 'backbone/dense_0/kernel';

      expect(first.result.stateKey).toBe(`${strategy}/state-1`);
      expect(deltas(first.weights, namedWeights(global))[name][0]).toBeCloseTo(
        step1,
        5,
      );
      expect(deltas(roundTwo, namedWeights(global))[name][0]).toBeCloseTo(
        step1 + step2,
        5,
      );
      expect(state.get(`m/${name}`)!.values[0]).toBeCloseTo(m2, 5);
      expect(state.get(`v/${name}`)!.values[0]).toBeCloseTo(v2, 5);
    },
  );

  it('adds seeded Gaussian noise of the recorded std', async () => {
    const updates = [
      { key: await update('noise/1', global, () => 1), sampleCount: 1 },
      { key: await update('noise/2', global, () => 3), sampleCount: 1 },
    ];
    const noisy = (outputKey: string, seed: number) =>
      aggregate({
        updates,
        clipNorm: 100,
        noiseMultiplier: 1,
        seed,
        outputKey,
      });

    const plain = await aggregate({ updates, outputKey: 'noise/plain.zip' });
    const a = await noisy('noise/a.zip', 7);
    const again = await noisy('noise/again.zip', 7);
    const other = await noisy('noise/other.zip', 8);
    const noise = Object.values(deltas(a.weights, plain.weights)).flat();
    const std = Math.sqrt(noise.reduce((s, x) => s + x * x, 0) / noise.length);

    // 1 * clipNorm 100 / 2 updates.
    expect(a.result.noiseStd).toBe(50);
    expect(std).toBeGreaterThan(40);
    expect(std).toBeLessThan(60);
    expect(again.weights).toEqual(a.weights);
    expect(other.weights).not.toEqual(a.weights);
  });

  it('refuses an update holding a NaN, naming it', async () => {
    const bytes = encodeWeights(
      namedWeights(global, (v, name, i) =>
        name === 'head/price/logits/kernel' && i === 3 ? NaN : v,
      ),
    );
    await storage.put('nan/1', bytes, bytes.length);

    const failure = aggregateRound(storage, {
      global: { key: 'round-0.zip' },
      strategy: 'fedavg',
      updates: [
        { key: await update('nan/0', global, () => 1), sampleCount: 1 },
        { key: 'nan/1', sampleCount: 1 },
      ],
      outputKey: 'nan/out.zip',
    });

    await expect(failure).rejects.toMatchObject({
      field: 'updates[1].weights.head/price/logits/kernel',
    });
    expect(await storage.stat('nan/out.zip')).toBeUndefined();
  });

  it('clips each delta to clipNorm before averaging', async () => {
    const bound = Math.sqrt(size);
    const updates = [
      { key: await update('clip/1', global, () => 1), sampleCount: 1 },
      { key: await update('clip/2', global, () => 10), sampleCount: 1 },
    ];

    const { result, weights } = await aggregate({
      updates,
      clipNorm: bound,
      outputKey: 'clip/out.zip',
    });

    // Norms sqrt(n) and 10 sqrt(n): the second is scaled by 1/10.
    expect(result.updateNorms[1]).toBeCloseTo(10 * bound, 3);
    for (const values of Object.values(deltas(weights, namedWeights(global)))) {
      values.forEach((d) => expect(d).toBeCloseTo(1, 4));
    }
  });
});
