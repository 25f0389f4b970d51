/**
 * Federated MNIST without the service: 10 silos each hold the training
 * images of 2 digits (silo k: digits k and k+1; label skew). FedAvg and
 * FedProx (one run per proximal weight mu) run R rounds each from the same
 * seeded initial weights: every silo trains LOCAL_EPOCHS epochs starting
 * from the round's global weights (`train({ base })`, plus
 * `proximal: { mu }` for FedProx), uploads its weights, and
 * libs/federation's aggregateRound combines them in the embedded S3. The
 * global is evaluated on a common test set after each round and compared
 * with centralised training on the union of the silos for R × LOCAL_EPOCHS
 * epochs.
 *
 *   npm run build && node dist/bench/federated-mnist.js
 *   ROUNDS=100 LOCAL_EPOCHS=1 MUS=0.001,0.01,0.1 EVERY=10 OPTIMIZER=sgd \
 *     LR=0.05 BATCH=32 node dist/bench/federated-mnist.js
 *
 * Goals: FedAvg within 3 points of centralised; FedProx at least as good.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';

import type { DatasetSchema } from '#libs/datasets';
import { startEmbeddedS3 } from '#libs/embedded';
import { aggregateRound, encodeWeights } from '#libs/federation';
import { ObjectStorage } from '#libs/storage';
import {
  exportArtifact,
  loadArtifactModel,
  namedWeightsOf,
  selectBackend,
  train,
  unzipArtifact,
  weightsFromArtifact,
  zipArtifact,
  type Artifact,
  type NamedWeights,
  type TrainOptions,
} from '#libs/training';

import { streamOf, timed } from './training-data';

interface MnistDigit {
  raw: number[];
  length: number;
}

interface Images {
  image: Uint8Array;
  digit: Int32Array;
  count: number;
}

interface Algorithm {
  name: string;
  /** Prefix of its objects in storage. */
  key: string;
  /** FedProx's proximal weight; FedAvg has none. */
  mu?: number;
}

interface FederatedRun {
  name: string;
  /** Global test accuracy after each round (index 0: round 1). */
  accuracy: number[];
  seconds: number;
}

const SIZE = 28;
const PIXELS = SIZE * SIZE;
const SILOS = 10;
const ROUNDS = Number(process.env.ROUNDS ?? 100);
const LOCAL_EPOCHS = Number(process.env.LOCAL_EPOCHS ?? 1);
const MUS = (process.env.MUS ?? '0.001,0.01,0.1')
  .split(',')
  .filter((mu) => mu !== '')
  .map(Number);
const EVERY = Number(process.env.EVERY ?? 10);
const SEED = 7;

/** Per digit, the samples as 0-255 pixels, split 80/20 into train and test. */
function loadDigits(): { train: Uint8Array[][]; test: Uint8Array[][] } {
  const mnist = createRequire(__filename)('mnist') as MnistDigit[];
  const train: Uint8Array[][] = [];
  const test: Uint8Array[][] = [];
  for (let d = 0; d < 10; d++) {
    const samples = Array.from({ length: mnist[d].length }, (_, i) =>
      Uint8Array.from(mnist[d].raw.slice(i * PIXELS, (i + 1) * PIXELS), (v) =>
        Math.round(255 * v),
      ),
    );
    const cut = Math.floor(samples.length * 0.8);
    train.push(samples.slice(0, cut));
    test.push(samples.slice(cut));
  }

  return { train, test };
}

function imagesOf(samples: { pixels: Uint8Array; digit: number }[]): Images {
  // A fixed interleaving so that batches mix the digits.
  const order = samples
    .map((s, i) => ({ s, key: (i * 2654435761) % 4294967296 }))
    .sort((a, b) => a.key - b.key)
    .map((x) => x.s);
  const image = new Uint8Array(order.length * PIXELS);
  const digit = new Int32Array(order.length);
  order.forEach((s, i) => {
    image.set(s.pixels, i * PIXELS);
    digit[i] = s.digit;
  });

  return { image, digit, count: order.length };
}

function dataOf(images: Images): TrainOptions['data'] {
  const schema: DatasetSchema = {
    rowCount: images.count,
    columns: [
      {
        name: 'image',
        type: 'image',
        statistics: { count: images.count, missing: 0 },
        image: { height: SIZE, width: SIZE, channels: 1 },
      },
      {
        name: 'digit',
        type: 'categorical',
        statistics: { count: images.count, missing: 0 },
        vocabulary: Array.from({ length: 10 }, (_, d) => String(d)),
      },
    ],
  };

  return {
    schema,
    train: streamOf(
      { image: images.image, digit: images.digit },
      images.count,
      { image: PIXELS },
    ),
  };
}

const common = {
  spec: {
    features: ['image'],
    backbone: { kind: 'mlp' as const, widths: [128] },
    tasks: [{ name: 'digit', kind: 'multiclass' as const, target: 'digit' }],
  },
  batchSize: Number(process.env.BATCH ?? 32),
  optimizer: {
    kind: (process.env.OPTIMIZER ?? 'sgd') as 'adam' | 'sgd',
    learningRate: Number(process.env.LR ?? 0.05),
  },
  restoreBest: false,
  recordSteps: false,
  seed: SEED,
};

async function accuracy(artifact: Artifact, test: Images): Promise<number> {
  const model = await loadArtifactModel(artifact);
  const correct = tf.tidy(() => {
    const x = tf
      .tensor4d(Float32Array.from(test.image), [test.count, SIZE, SIZE, 1])
      .div(255);
    const predicted = (model.predict(x) as tf.Tensor).argMax(-1);

    return predicted.equal(tf.tensor1d(test.digit, 'int32')).sum().arraySync();
  }) as number;
  model.dispose();

  return correct / test.count;
}

/** The local weights as an update file, in the global's weight order. */
function updateOf(global: NamedWeights, local: NamedWeights): Buffer {
  return encodeWeights(
    new Map(
      [...global.keys()].map((name) => {
        const weight = local.get(name);
        if (!weight) {
          throw new Error(`The local model has no weight ${name}.`);
        }

        return [name, weight];
      }),
    ),
  );
}

async function readArtifact(
  storage: ObjectStorage,
  key: string,
): Promise<Artifact> {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.get(key)) {
    chunks.push(chunk as Buffer);
  }

  return unzipArtifact(Buffer.concat(chunks));
}

/** R rounds of one algorithm from `global-0.zip`; the silos train in turn. */
async function runFederated(
  storage: ObjectStorage,
  algorithm: Algorithm,
  silos: Images[],
  test: Images,
): Promise<FederatedRun> {
  const accuracies: number[] = [];
  const { seconds } = await timed(async () => {
    let globalKey = 'global-0.zip';
    let global = await readArtifact(storage, globalKey);
    for (let round = 1; round <= ROUNDS; round++) {
      const weights = weightsFromArtifact(global);
      const updates = [];
      for (let k = 0; k < silos.length; k++) {
        const result = await train({
          ...common,
          data: dataOf(silos[k]),
          epochs: LOCAL_EPOCHS,
          // Another shuffle every round (the same in every run).
          seed: SEED + round * silos.length + k,
          base: { weights },
          proximal:
            algorithm.mu === undefined ? undefined : { mu: algorithm.mu },
        });
        const update = updateOf(weights, namedWeightsOf(result.model));
        result.model.dispose();
        const key = `${algorithm.key}/round-${round}/silo-${k}`;
        await storage.put(key, update, update.length);
        updates.push({ key, sampleCount: silos[k].count });
      }
      const outputKey = `${algorithm.key}/global-${round}.zip`;
      await aggregateRound(storage, {
        global: { key: globalKey },
        updates,
        strategy: algorithm.mu === undefined ? 'fedavg' : 'fedprox',
        outputKey,
      });
      globalKey = outputKey;
      global = await readArtifact(storage, globalKey);
      accuracies.push(await accuracy(global, test));
      process.stderr.write(
        `${algorithm.name} round ${round}: ` +
          `${(100 * accuracies[round - 1]).toFixed(2)}%\n`,
      );
    }
  });

  return { name: algorithm.name, accuracy: accuracies, seconds };
}

const percent = (value: number) => (100 * value).toFixed(2);

function printTable(runs: FederatedRun[], central: FederatedRun) {
  const rounds = Array.from({ length: ROUNDS }, (_, i) => i + 1).filter(
    (round) => round % EVERY === 0 || round === 1 || round === ROUNDS,
  );
  const width = Math.max(...runs.map((run) => run.name.length), 11);
  const cell = (text: string) => text.padStart(6);
  console.log(
    `\naccuracy % of the global after round (centralised: ` +
      `${percent(central.accuracy[0])}% ` +
      `after ${ROUNDS * LOCAL_EPOCHS} epochs)`,
  );
  console.log(
    [
      'run'.padEnd(width),
      ...rounds.map((r) => cell(String(r))),
      'gap'.padStart(6),
      'seconds',
    ].join(' | '),
  );
  for (const run of [...runs, central]) {
    const final = run.accuracy[run.accuracy.length - 1];
    const isCentral = run === central;
    console.log(
      [
        run.name.padEnd(width),
        ...rounds.map((r) =>
          cell(
            isCentral
              ? r === ROUNDS
                ? percent(final)
                : '-'
              : percent(run.accuracy[r - 1]),
          ),
        ),
        (100 * (final - central.accuracy[0])).toFixed(2).padStart(6),
        run.seconds.toFixed(0).padStart(7),
      ].join(' | '),
    );
  }
}

async function main() {
  const { backend } = await selectBackend();
  const digits = loadDigits();
  const silos: { pixels: Uint8Array; digit: number }[][] = Array.from(
    { length: SILOS },
    () => [],
  );
  digits.train.forEach((samples, d) => {
    // Digit d: first half to silo d, second half to silo d - 1.
    const half = Math.floor(samples.length / 2);
    samples.forEach((pixels, i) =>
      silos[i < half ? d : (d + SILOS - 1) % SILOS].push({ pixels, digit: d }),
    );
  });
  const siloImages = silos.map(imagesOf);
  const test = imagesOf(
    digits.test.flatMap((samples, d) =>
      samples.map((pixels) => ({ pixels, digit: d })),
    ),
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'chorus-bench-fl-'));
  const s3 = await startEmbeddedS3({ directory: dir, port: 0 });
  const storage = new ObjectStorage({
    endpoint: s3.endpoint,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: 'us-east-1',
    bucket: 'bench',
    presignMaxSeconds: 600,
  });
  await storage.ensureBucket();

  // Round 0: the seeded initial weights, before any step.
  const initial = await train({
    ...common,
    data: dataOf(siloImages[0]),
    epochs: 1,
    signal: AbortSignal.abort(),
  });
  const bytes = await zipArtifact(await exportArtifact(initial.model));
  initial.model.dispose();
  await storage.put('global-0.zip', bytes, bytes.length);

  console.log(
    `backend ${backend}; ${SILOS} silos of 2 digits ` +
      `(${siloImages.map((s) => s.count).join(', ')} images), ` +
      `${test.count} test images, ${ROUNDS} rounds of ${LOCAL_EPOCHS} ` +
      `local epoch(s), ${common.optimizer.kind} learning rate ` +
      `${common.optimizer.learningRate}, batch ${common.batchSize}`,
  );
  const algorithms: Algorithm[] = [
    { name: 'fedavg', key: 'fedavg' },
    ...MUS.map((mu) => ({
      name: `fedprox mu=${mu}`,
      key: `fedprox-${mu}`,
      mu,
    })),
  ];
  const runs: FederatedRun[] = [];
  for (const algorithm of algorithms) {
    runs.push(await runFederated(storage, algorithm, siloImages, test));
  }

  const all = imagesOf(silos.flat());
  const { result, seconds } = await timed(() =>
    train({ ...common, data: dataOf(all), epochs: ROUNDS * LOCAL_EPOCHS }),
  );
  const artifact = await exportArtifact(result.model);
  result.model.dispose();
  const central = {
    name: 'centralised',
    accuracy: [await accuracy(artifact, test)],
    seconds,
  };
  printTable(runs, central);
  await s3.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
