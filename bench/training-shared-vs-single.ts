/**
 * One shared-backbone model with 4 task heads against 4 single-task models
 * of the same size, on the same rows and backend. Prints the wall-time
 * ratio (goal: at most 0.35) and each task's metric side by side (goal:
 * within 1 point).
 *
 * Run: npx tsc -p tsconfig.build.json &&
 *      node dist/bench/training-shared-vs-single.js
 * Optional: BALANCING (a loss-balancing strategy, default equal), EPOCHS
 * (default 12), WIDTHS (backbone widths, default 512,512). With a small
 * backbone the per-task work (losses, metrics, head updates) dominates and
 * sharing saves less.
 */
import {
  selectBackend,
  type BalancingStrategy,
  train,
  type TaskOptions,
  type TrainOptions,
} from '#libs/training';

import { CUSTOMER_FEATURES, customerTable, timed } from './training-data';

const TASKS: TaskOptions[] = [
  { name: 'value', kind: 'regression', target: 'value' },
  { name: 'churn', kind: 'binary', target: 'churn' },
  { name: 'tier', kind: 'multiclass', target: 'tier' },
  { name: 'tags', kind: 'multilabel', target: ['tagA', 'tagB'] },
];
const EPOCHS = Number(process.env.EPOCHS ?? 12);
const WIDTHS = (process.env.WIDTHS ?? '512,512').split(',').map(Number);
const BALANCING = (process.env.BALANCING ?? 'equal') as BalancingStrategy;
const METRIC: Record<string, string> = {
  value: 'r2',
  churn: 'accuracy',
  tier: 'accuracy',
  tags: 'microF1',
};

async function run(tasks: TaskOptions[]) {
  const data = customerTable(16_000, 1);
  const validation = customerTable(4_000, 2);
  const options: TrainOptions = {
    spec: {
      features: CUSTOMER_FEATURES,
      backbone: { kind: 'mlp', widths: WIDTHS },
      tasks,
    },
    data: {
      schema: data.schema,
      train: data.batches,
      validation: validation.batches,
    },
    epochs: EPOCHS,
    batchSize: 128,
    optimizer: { kind: 'adam', learningRate: 0.003 },
    schedule: { kind: 'cosine', warmupSteps: 50 },
    balancing: { strategy: BALANCING },
    recordSteps: false,
  };
  const { result, seconds } = await timed(() => train(options));
  result.model.dispose();
  const metrics = result.history.epochs.at(-1)!.validation;

  return {
    seconds,
    metrics: Object.fromEntries(
      tasks.map((t) => [t.name, metrics[t.name][METRIC[t.name]]]),
    ),
  };
}

async function main() {
  const { backend } = await selectBackend();
  const shared = await run(TASKS);
  const single = { seconds: 0, metrics: {} as Record<string, number> };
  for (const task of TASKS) {
    const one = await run([task]);
    single.seconds += one.seconds;
    Object.assign(single.metrics, one.metrics);
  }
  console.log(
    JSON.stringify(
      {
        backend,
        balancing: BALANCING,
        epochs: EPOCHS,
        widths: WIDTHS,
        sharedSeconds: Number(shared.seconds.toFixed(1)),
        singleSecondsTotal: Number(single.seconds.toFixed(1)),
        wallTimeRatio: Number((shared.seconds / single.seconds).toFixed(3)),
        metrics: Object.fromEntries(
          TASKS.map((t) => [
            `${t.name}.${METRIC[t.name]}`,
            {
              shared: Number(shared.metrics[t.name].toFixed(4)),
              single: Number(single.metrics[t.name].toFixed(4)),
              pointsDifference: Number(
                (
                  100 *
                  (shared.metrics[t.name] - single.metrics[t.name])
                ).toFixed(2),
              ),
            },
          ]),
        ),
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
