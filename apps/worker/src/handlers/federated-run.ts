import type { DatasetSchema } from '#libs/datasets';
import type { PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import {
  buildTrainingRun,
  localTrainingConfig,
  type FederatedRunConfig,
} from '#libs/jobs';

/** A run with what its rounds need: participants, model, reference data. */
export async function loadRun(
  prisma: PrismaClient,
  projectId: string,
  runId: string,
) {
  const run = await prisma.federatedRun.findFirst({
    where: { id: runId, projectId },
    include: {
      participants: { orderBy: { createdAt: 'asc' } },
      model: { include: { tasks: { include: { dataset: true } } } },
    },
  });
  if (!run) {
    throw ChorusError.notFound('FederatedRun', runId);
  }
  const config = run.config as unknown as FederatedRunConfig;
  // The model's own dataset defines preprocessing and label vocabularies
  // for every participant, so all of them encode rows alike.
  const reference = run.model.tasks[0].dataset;
  const training = buildTrainingRun(
    run.model,
    localTrainingConfig(run.modelId, config),
  );
  const silos = await prisma.dataset.findMany({
    where: {
      projectId,
      id: {
        in: run.participants.flatMap((p) => (p.datasetId ? [p.datasetId] : [])),
      },
    },
  });

  return {
    run,
    config,
    training,
    reference: {
      name: reference.id,
      schema: reference.schema as unknown as DatasetSchema,
      shardPrefix: reference.shardPrefix!,
    },
    /** A silo's shards, read as the reference dataset's columns. */
    siloSource(datasetId: string) {
      const silo = silos.find((d) => d.id === datasetId);
      if (!silo?.shardPrefix) {
        throw ChorusError.conflict(
          `Dataset ${datasetId} of run ${runId} is not READY.`,
        );
      }

      return {
        name: reference.id,
        schema: reference.schema as unknown as DatasetSchema,
        shardPrefix: silo.shardPrefix,
        dataSchema: silo.schema as unknown as DatasetSchema,
      };
    },
  };
}

export type LoadedRun = Awaited<ReturnType<typeof loadRun>>;

/** A seeded choice of `count` of `items` (Fisher-Yates on a small LCG). */
export function sample<T>(items: T[], count: number, seed: number): T[] {
  const copy = [...items];
  let state = (seed >>> 0) ^ 0x9e3779b9;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;

    return state / 2 ** 32;
  };
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }

  return copy.slice(0, count);
}
