/**
 * Two-digit MNIST: each image holds two real MNIST digits side by side
 * (28 x 56); the tasks are the left digit and the right digit. A
 * shared-backbone CNN with equal task weights is compared with two
 * single-task models of the same size: accuracy per task (goal: within 2
 * points) and wall time (goal: less than the two together).
 *
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/training-mnist.js
 * Optional: TRAIN_PAIRS, TEST_PAIRS, EPOCHS environment variables.
 */
import { createRequire } from 'node:module';

import type { ColumnSchema, DatasetSchema } from '#libs/datasets';
import {
  Random,
  selectBackend,
  train,
  type TaskOptions,
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
const TRAIN_PAIRS = Number(process.env.TRAIN_PAIRS ?? 8000);
const TEST_PAIRS = Number(process.env.TEST_PAIRS ?? 2000);
const EPOCHS = Number(process.env.EPOCHS ?? 5);

/** Samples per digit, split 80/20 into train and test pools. */
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

function pairs(pool: number[][][], count: number, seed: number) {
  const random = new Random(seed);
  const width = 2 * SIZE;
  const image = new Uint8Array(count * SIZE * width);
  const left = new Int32Array(count);
  const right = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    left[i] = random.int(10);
    right[i] = random.int(10);
    const digits = [left[i], right[i]].map(
      (d) => pool[d][random.int(pool[d].length)],
    );
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < width; x++) {
        const digit = digits[x < SIZE ? 0 : 1];
        image[i * SIZE * width + y * width + x] = Math.round(
          255 * digit[y * SIZE + (x % SIZE)],
        );
      }
    }
  }
  const vocabulary = Array.from({ length: 10 }, (_, d) => String(d));
  const label = (name: string): ColumnSchema => ({
    name,
    type: 'categorical',
    statistics: { count, missing: 0 },
    vocabulary,
  });
  const schema: DatasetSchema = {
    rowCount: count,
    columns: [
      {
        name: 'image',
        type: 'image',
        statistics: { count, missing: 0 },
        image: { height: SIZE, width, channels: 1 },
      },
      label('left'),
      label('right'),
    ],
  };

  return {
    schema,
    batches: streamOf({ image, left, right }, count, {
      image: SIZE * width,
    }),
  };
}

async function run(tasks: TaskOptions[], data: ReturnType<typeof pairs>[]) {
  const [trainSet, testSet] = data;
  const options: TrainOptions = {
    spec: {
      features: ['image'],
      backbone: {
        kind: 'cnn',
        blocks: [{ filters: 8 }, { filters: 16 }],
        dense: [64],
      },
      tasks,
    },
    data: {
      schema: trainSet.schema,
      train: trainSet.batches,
      validation: testSet.batches,
    },
    epochs: EPOCHS,
    batchSize: 64,
    optimizer: { kind: 'adam', learningRate: 0.002 },
    balancing: { strategy: 'equal' },
    recordSteps: false,
  };
  const { result, seconds } = await timed(() => train(options));
  result.model.dispose();
  const metrics = result.history.epochs.at(-1)!.validation;

  return {
    seconds,
    accuracy: Object.fromEntries(
      tasks.map((t) => [t.name, metrics[t.name].accuracy]),
    ),
  };
}

async function main() {
  const { backend } = await selectBackend();
  const digits = loadDigits();
  const data = [
    pairs(digits.train, TRAIN_PAIRS, 1),
    pairs(digits.test, TEST_PAIRS, 2),
  ];
  const tasks: TaskOptions[] = [
    { name: 'left', kind: 'multiclass', target: 'left' },
    { name: 'right', kind: 'multiclass', target: 'right' },
  ];
  const shared = await run(tasks, data);
  const left = await run([tasks[0]], data);
  const right = await run([tasks[1]], data);
  const singleSeconds = left.seconds + right.seconds;
  const points = (name: 'left' | 'right', single: typeof left) =>
    Number((100 * (shared.accuracy[name] - single.accuracy[name])).toFixed(2));
  console.log(
    JSON.stringify(
      {
        backend,
        trainPairs: TRAIN_PAIRS,
        testPairs: TEST_PAIRS,
        epochs: EPOCHS,
        shared: {
          seconds: Number(shared.seconds.toFixed(1)),
          left: shared.accuracy.left,
          right: shared.accuracy.right,
        },
        single: {
          seconds: Number(singleSeconds.toFixed(1)),
          left: left.accuracy.left,
          right: right.accuracy.right,
        },
        wallTimeRatio: Number((shared.seconds / singleSeconds).toFixed(3)),
        pointsSharedMinusSingle: {
          left: points('left', left),
          right: points('right', right),
        },
      },
      null,
      2,
    ),
  );
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
