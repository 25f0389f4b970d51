/**
 * Federated MNIST without the service: 10 silos each hold the training
 * images of 2 digits (silo k: digits k and k+1; label skew), FedAvg over R
 * rounds (one local epoch per silo from the global weights, aggregated with
 * libs/federation's aggregateRound in the embedded S3), the global evaluated
 * on a common test set after each round. Compared with centralised training
 * on the union of the silos for the same number of epochs.
 *
 *   npm run build && node dist/bench/federated-mnist.js
 *   ROUNDS=100 LOCAL_EPOCHS=1 OPTIMIZER=sgd LR=0.05 BATCH=32 \
 *     node dist/bench/federated-mnist.js
 *
 * Goal: FedAvg within 3 points of centralised.
 *
 * Local training starts from the global weights through a checkpoint (the
 * silo's previous one, its weights replaced by the global's and its Adam
 * moments reset): libs/training has no option to start from given weights on
 * this branch, so FedProx (a proximal term in local training) is not run.
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
  readCheckpointTensors,
  selectBackend,
  train,
  unzipArtifact,
  writeCheckpoint,
  zipArtifact,
  type Artifact,
  type Checkpoint,
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

const SIZE = 28;
const PIXELS = SIZE * SIZE;
const SILOS = 10;
const ROUNDS = Number(process.env.ROUNDS ?? 100);
const LOCAL_EPOCHS = Number(process.env.LOCAL_EPOCHS ?? 1);
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

/** The silo's last checkpoint with the global weights and fresh moments. */
function startFrom(
  checkpoint: Checkpoint,
  global: Map<string, Float32Array>,
): Checkpoint {
  const tensors = [...readCheckpointTensors(checkpoint)]
    .filter(([name]) => !name.startsWith('best/'))
    .map(([name, t]) => ({
      name,
      shape: t.shape,
      values: name.startsWith('weight/')
        ? global.get(name.slice('weight/'.length))!
        : name.startsWith('slot/')
          ? new Float32Array(t.values.length)
          : t.values,
    }));
  const { manifest } = checkpoint;

  return writeCheckpoint(
    {
      spec: manifest.spec,
      epoch: manifest.epoch,
      step: manifest.step,
      optimizerIterations: 0,
      random: manifest.random,
      balancer: manifest.balancer,
      history: manifest.history,
      best: null,
      wait: 0,
    },
    tensors,
  );
}

function weightsOf(artifact: Artifact): Map<string, Float32Array> {
  const json = JSON.parse(artifact.modelJson) as {
    weightsManifest: { weights: { name: string; shape: number[] }[] }[];
  };
  const all = new Float32Array(artifact.weights.slice().buffer);
  const out = new Map<string, Float32Array>();
  let offset = 0;
  for (const spec of json.weightsManifest.flatMap((g) => g.weights)) {
    const size = spec.shape.reduce((n, d) => n * d, 1);
    out.set(spec.name, all.slice(offset, offset + size));
    offset += size;
  }

  return out;
}

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
  let global = await exportArtifact(initial.model);
  initial.model.dispose();
  const bytes = await zipArtifact(global);
  await storage.put('global-0.zip', bytes, bytes.length);

  console.log(
    `backend ${backend}; ${SILOS} silos of 2 digits ` +
      `(${siloImages.map((s) => s.count).join(', ')} images), ` +
      `${test.count} test images, ${ROUNDS} rounds of ${LOCAL_EPOCHS} local epoch(s)`,
  );
  const checkpoints: (Checkpoint | null)[] = siloImages.map(() => null);
  const fedSeconds = (
    await timed(async () => {
      for (let round = 1; round <= ROUNDS; round++) {
        const globalWeights = weightsOf(global);
        const updates = [];
        for (let k = 0; k < SILOS; k++) {
          const previous = checkpoints[k];
          const result = await train({
            ...common,
            data: dataOf(siloImages[k]),
            epochs: (previous?.manifest.epoch ?? 0) + LOCAL_EPOCHS,
            resumeFrom: previous
              ? startFrom(previous, globalWeights)
              : undefined,
          });
          checkpoints[k] = result.checkpoint;
          const local = weightsOf(await exportArtifact(result.model));
          result.model.dispose();
          const key = `round-${round}/silo-${k}`;
          const specs = JSON.parse(global.modelJson) as {
            weightsManifest: {
              weights: { name: string; shape: number[] }[];
            }[];
          };
          const weights = encodeWeights(
            new Map(
              specs.weightsManifest
                .flatMap((g) => g.weights)
                .map((s) => [
                  s.name,
                  { shape: s.shape, values: local.get(s.name)! },
                ]),
            ),
          );
          await storage.put(key, weights, weights.length);
          updates.push({ key, sampleCount: siloImages[k].count });
        }
        await aggregateRound(storage, {
          global: { key: `global-${round - 1}.zip` },
          updates,
          strategy: 'fedavg',
          outputKey: `global-${round}.zip`,
        });
        const stored = await storage.get(`global-${round}.zip`);
        const chunks: Buffer[] = [];
        for await (const chunk of stored) {
          chunks.push(chunk as Buffer);
        }
        global = await unzipArtifact(Buffer.concat(chunks));
        console.log(
          `round ${String(round).padStart(2)}: global accuracy ` +
            `${(100 * (await accuracy(global, test))).toFixed(2)}%`,
        );
      }
    })
  ).seconds;
  const fedAccuracy = await accuracy(global, test);

  const all = imagesOf(
    silos.flat().map((s) => ({ pixels: s.pixels, digit: s.digit })),
  );
  const { result: central, seconds: centralSeconds } = await timed(() =>
    train({ ...common, data: dataOf(all), epochs: ROUNDS * LOCAL_EPOCHS }),
  );
  const centralArtifact = await exportArtifact(central.model);
  central.model.dispose();
  const centralAccuracy = await accuracy(centralArtifact, test);
  console.log(
    JSON.stringify(
      {
        fedavg: {
          accuracy: Number(fedAccuracy.toFixed(4)),
          seconds: Number(fedSeconds.toFixed(1)),
        },
        centralised: {
          accuracy: Number(centralAccuracy.toFixed(4)),
          epochs: ROUNDS * LOCAL_EPOCHS,
          seconds: Number(centralSeconds.toFixed(1)),
        },
        pointsFedavgMinusCentralised: Number(
          (100 * (fedAccuracy - centralAccuracy)).toFixed(2),
        ),
        fedprox: 'not run: libs/training cannot start from given weights here',
      },
      null,
      2,
    ),
  );
  await s3.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
