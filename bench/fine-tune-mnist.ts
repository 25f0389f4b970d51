/**
 * Few-shot MNIST: a backbone (MLP 256-128, or a small CNN with BACKBONE=cnn)
 * is trained on digits 0-4, then a new head for digits 5-9 is trained on a
 * few labelled examples per digit starting from that backbone: fully
 * fine-tuned (`fullFineTune`, the headline), with the backbone frozen, with
 * its first layers frozen, and two-stage (frozen for half the epochs, then
 * at a tenth of the rate). The same network trained from scratch on the same
 * examples, with the same learning rates, is the baseline. All are
 * evaluated after their last epoch on held-out digits 5-9, averaged over
 * SEEDS draws of the few examples.
 *
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/fine-tune-mnist.js
 * Optional: BASE_PER_DIGIT (600), SHOTS (5,10,25), SEEDS (5),
 * TEST_PER_DIGIT (300), BASE_EPOCHS (15), EPOCHS (30), LEARNING_RATE
 * (0.001, backbone), HEAD_LEARNING_RATE (0.01), VARIANTS (all) environment
 * variables.
 */
import { createRequire } from 'node:module';

import type { DatasetSchema } from '#libs/datasets';
import {
  namedWeightsOf,
  Random,
  selectBackend,
  train,
  type BackboneOptions,
  type FreezePolicy,
  type NamedWeights,
  type TrainOptions,
} from '#libs/training';

import { streamOf, timed } from './training-data';

interface MnistDigit {
  /** Pixels in [0, 1], 784 per sample, samples back to back. */
  raw: number[];
  length: number;
}

const SIZE = 28;
const PIXELS = SIZE * SIZE;
const BASE_PER_DIGIT = Number(process.env.BASE_PER_DIGIT ?? 600);
const SHOTS = (process.env.SHOTS ?? '5,10,25').split(',').map(Number);
const SEEDS = Number(process.env.SEEDS ?? 5);
const TEST_PER_DIGIT = Number(process.env.TEST_PER_DIGIT ?? 300);
const BASE_EPOCHS = Number(process.env.BASE_EPOCHS ?? 15);
const EPOCHS = Number(process.env.EPOCHS ?? 30);
const LEARNING_RATE = Number(process.env.LEARNING_RATE ?? 0.001);
const HEAD_LEARNING_RATE = Number(process.env.HEAD_LEARNING_RATE ?? 0.01);
const BACKBONE: BackboneOptions =
  process.env.BACKBONE === 'cnn'
    ? { kind: 'cnn', blocks: [{ filters: 16 }, { filters: 32 }], dense: [64] }
    : { kind: 'mlp', widths: [256, 128] };

/** Per digit: a train pool (first 80 %) and a test pool (last 20 %). */
function loadDigits(): { train: number[][][]; test: number[][][] } {
  const load = createRequire(__filename);
  const mnist = load('mnist') as MnistDigit[];
  const train: number[][][] = [];
  const test: number[][][] = [];
  for (let d = 0; d < 10; d++) {
    const samples = Array.from({ length: mnist[d].length }, (_, i) =>
      mnist[d].raw.slice(i * PIXELS, (i + 1) * PIXELS),
    );
    const cut = Math.floor(samples.length * 0.8);
    train.push(samples.slice(0, cut));
    test.push(samples.slice(cut));
  }

  return { train, test };
}

/** `perDigit` random samples of each digit, labelled in a column `name`. */
function dataset(
  pool: number[][][],
  digits: number[],
  perDigit: number,
  name: string,
  seed: number,
) {
  const random = new Random(seed);
  const picked = digits.flatMap((digit, label) => {
    const order = pool[digit].map((_, i) => i);
    random.shuffle(order);

    return order
      .slice(0, perDigit)
      .map((i) => ({ pixels: pool[digit][i], label }));
  });
  random.shuffle(picked);
  const count = picked.length;
  const image = new Uint8Array(count * PIXELS);
  const labels = new Int32Array(count);
  picked.forEach(({ pixels, label }, i) => {
    pixels.forEach((p, j) => (image[i * PIXELS + j] = Math.round(255 * p)));
    labels[i] = label;
  });
  const schema: DatasetSchema = {
    rowCount: count,
    columns: [
      {
        name: 'image',
        type: 'image',
        statistics: { count, missing: 0 },
        image: { height: SIZE, width: SIZE, channels: 1 },
      },
      {
        name,
        type: 'categorical',
        statistics: { count, missing: 0 },
        vocabulary: digits.map(String),
      },
    ],
  };

  return {
    schema,
    count,
    batches: streamOf({ image, [name]: labels }, count, { image: PIXELS }),
  };
}

async function main() {
  const { backend } = await selectBackend();
  const digits = loadDigits();
  const low = [0, 1, 2, 3, 4];
  const high = [5, 6, 7, 8, 9];

  const baseData = dataset(digits.train, low, BASE_PER_DIGIT, 'low', 1);
  const baseTest = dataset(digits.test, low, TEST_PER_DIGIT, 'low', 3);
  const pretrained = await timed(() =>
    train({
      spec: {
        features: ['image'],
        backbone: BACKBONE,
        tasks: [{ name: 'low', kind: 'multiclass', target: 'low' }],
      },
      data: {
        schema: baseData.schema,
        train: baseData.batches,
        validation: baseTest.batches,
      },
      epochs: BASE_EPOCHS,
      batchSize: 64,
      // Shifted and rotated digits teach strokes rather than five shapes;
      // without this the backbone transferred worse than none (see docs).
      augmentation: { image: { cropPadding: 3, rotation: 15 } },
      optimizer: { kind: 'adam', learningRate: 0.001 },
      recordSteps: false,
    }),
  );
  const base = namedWeightsOf(pretrained.result.model);
  const baseAccuracy =
    pretrained.result.history.epochs.at(-1)!.validation.low.accuracy;
  pretrained.result.model.dispose();
  const test = dataset(digits.test, high, TEST_PER_DIGIT, 'high', 2);

  const run = async (
    data: ReturnType<typeof dataset>,
    seed: number,
    fineTune?: { weights: NamedWeights; freeze: FreezePolicy },
  ) => {
    const options: TrainOptions = {
      spec: {
        features: ['image'],
        backbone: BACKBONE,
        tasks: [{ name: 'high', kind: 'multiclass', target: 'high' }],
      },
      data: {
        schema: data.schema,
        train: data.batches,
        validation: test.batches,
      },
      epochs: EPOCHS,
      batchSize: 16,
      seed,
      optimizer: { kind: 'adam', learningRate: LEARNING_RATE },
      // The same rates for every variant, scratch included.
      learningRates: { backbone: LEARNING_RATE, heads: HEAD_LEARNING_RATE },
      // The last epoch is the result: picking the best epoch by the test
      // set would flatter both.
      restoreBest: false,
      recordSteps: false,
      ...(fineTune && {
        base: { weights: fineTune.weights },
        freeze: fineTune.freeze,
      }),
    };
    const { result, seconds } = await timed(() => train(options));
    result.model.dispose();

    return {
      accuracy: result.history.epochs.at(-1)!.validation.high.accuracy,
      seconds,
    };
  };

  const all: Record<string, FreezePolicy | null> = {
    scratch: null,
    fullFineTune: { kind: 'none' },
    frozenBackbone: { kind: 'backbone' },
    firstLayersFrozen: {
      kind: 'layers',
      count: BACKBONE.kind === 'cnn' ? BACKBONE.blocks.length : 1,
    },
    twoStage: { kind: 'two-stage', frozenEpochs: EPOCHS / 2 },
  };
  const variants = Object.fromEntries(
    Object.entries(all).filter(
      ([name]) => !process.env.VARIANTS || process.env.VARIANTS.includes(name),
    ),
  );
  const rows = [];
  for (const shots of SHOTS) {
    const sums: Record<
      string,
      { accuracy: number; seconds: number; winsOverScratch: number }
    > = {};
    for (let seed = 1; seed <= SEEDS; seed++) {
      const data = dataset(digits.train, high, shots, 'high', 100 + seed);
      let scratch = NaN;
      for (const [name, freeze] of Object.entries(variants)) {
        const outcome = await run(
          data,
          seed,
          freeze ? { weights: base, freeze } : undefined,
        );
        if (name === 'scratch') {
          scratch = outcome.accuracy;
        }
        sums[name] ??= { accuracy: 0, seconds: 0, winsOverScratch: 0 };
        sums[name].accuracy += outcome.accuracy / SEEDS;
        sums[name].seconds += outcome.seconds / SEEDS;
        sums[name].winsOverScratch += outcome.accuracy > scratch ? 1 : 0;
      }
    }
    const row = {
      examplesPerDigit: shots,
      trainExamples: shots * high.length,
      ...Object.fromEntries(
        Object.entries(sums).map(([name, sum]) => [
          name,
          {
            accuracy: Number((100 * sum.accuracy).toFixed(2)),
            seconds: Number(sum.seconds.toFixed(1)),
            ...(name !== 'scratch' && {
              winsOverScratch: `${sum.winsOverScratch} of ${SEEDS}`,
            }),
          },
        ]),
      ),
    };
    rows.push(row);
    console.error(JSON.stringify(row));
  }
  console.log(
    JSON.stringify(
      {
        backend,
        backbone: BACKBONE,
        pretrain: {
          digits: low,
          examples: baseData.count,
          epochs: BASE_EPOCHS,
          seconds: Number(pretrained.seconds.toFixed(1)),
          testAccuracy: Number((100 * baseAccuracy).toFixed(2)),
        },
        fineTune: {
          digits: high,
          epochs: EPOCHS,
          seeds: SEEDS,
          testExamples: test.count,
        },
        results: rows,
        beatsScratch: rows.map((row) => ({
          examplesPerDigit: row.examplesPerDigit,
          variants: Object.keys(variants).filter(
            (name) =>
              name !== 'scratch' &&
              accuracyOf(row, name) > accuracyOf(row, 'scratch'),
          ),
        })),
      },
      null,
      2,
    ),
  );
}

function accuracyOf(row: object, variant: string): number {
  return (row as Record<string, { accuracy: number }>)[variant].accuracy;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
