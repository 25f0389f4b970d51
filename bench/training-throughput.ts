/**
 * The engine's training throughput against a bare tfjs `model.fit` of the
 * identical network (same layers, optimizer, batch size and rows) on the same
 * backend. Prints rows/s for both and their ratio (goal: at least 0.95).
 *
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/training-throughput.js
 */
import * as tf from '@tensorflow/tfjs';

import { selectBackend, train, type BackendName } from '#libs/training';

import { CUSTOMER_FEATURES, customerTable, timed } from './training-data';

const ROWS = 20_000;
const EPOCHS = 3;
const BATCH = 128;
const WIDTHS = [256, 256];

async function bareFit(data: ReturnType<typeof customerTable>) {
  const xs = tf.tidy(() => {
    const columns = CUSTOMER_FEATURES.map((name) => {
      const stats = data.schema.columns.find(
        (c) => c.name === name,
      )!.statistics;

      return tf.div(
        tf.sub(tf.tensor1d(data.columns[name] as Float32Array), stats.mean!),
        stats.std!,
      );
    });

    return tf.stack(columns, 1);
  });
  const value = data.schema.columns.find((c) => c.name === 'value')!;
  const ys = tf.tidy(() =>
    tf
      .div(
        tf.sub(
          tf.tensor1d(data.columns.value as Float32Array),
          value.statistics.mean!,
        ),
        value.statistics.std!,
      )
      .reshape([ROWS, 1]),
  );
  const model = tf.sequential();
  WIDTHS.forEach((units, i) =>
    model.add(
      tf.layers.dense({
        units,
        activation: 'relu',
        inputShape: i === 0 ? [CUSTOMER_FEATURES.length] : undefined,
      }),
    ),
  );
  model.add(tf.layers.dense({ units: 1 }));
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'meanSquaredError' });
  const { seconds } = await timed(() =>
    model.fit(xs, ys, {
      epochs: EPOCHS,
      batchSize: BATCH,
      shuffle: true,
      verbose: 0,
    }),
  );
  tf.dispose([xs, ys]);
  model.dispose();

  return seconds;
}

async function engine(data: ReturnType<typeof customerTable>) {
  const { result, seconds } = await timed(() =>
    train({
      spec: {
        features: CUSTOMER_FEATURES,
        backbone: { kind: 'mlp', widths: WIDTHS },
        tasks: [{ name: 'value', kind: 'regression', target: 'value' }],
      },
      data: { schema: data.schema, train: data.batches },
      epochs: EPOCHS,
      batchSize: BATCH,
      recordSteps: false,
    }),
  );
  result.model.dispose();

  return seconds;
}

async function main() {
  const data = customerTable(ROWS, 1);
  const backends = (process.argv[2]?.split(',') ?? [
    'wasm',
    'cpu',
  ]) as BackendName[];
  for (const backend of backends) {
    const choice = await selectBackend({ prefer: [backend] });
    // Warm up kernels and allocations before timing either side.
    await engine(customerTable(1024, 2));
    const fitSeconds = await bareFit(data);
    const engineSeconds = await engine(data);
    const rows = ROWS * EPOCHS;
    console.log(
      JSON.stringify({
        backend: choice.backend,
        network: `mlp ${CUSTOMER_FEATURES.length}-${WIDTHS.join('-')}-1`,
        batchSize: BATCH,
        fitRowsPerSecond: Math.round(rows / fitSeconds),
        engineRowsPerSecond: Math.round(rows / engineSeconds),
        ratio: Number((fitSeconds / engineSeconds).toFixed(3)),
      }),
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
