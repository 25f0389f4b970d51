import type { Logger } from 'pino';

import type { Env } from '#libs/config';
import type { PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import {
  acceptUpdate,
  federatedKeys,
  type FederatedLocalContext,
} from '#libs/jobs';
import type { JobQueue } from '#libs/queue';
import type { ObjectStorage } from '#libs/storage';

import { childStorage, superviseChild } from '../training/supervise';
import { loadRun } from './federated-run';
import { JobContext, JobHandler, JobOutcome } from './job-handler';

/**
 * A silo's local training in a federated round: trains from the round's
 * global weights (and the silo's own heads when only the backbone is
 * shared) on the silo's data alone, stores the weights as an update and
 * counts it in the round. An update for a round that has closed meanwhile
 * is discarded.
 */
export class FederatedLocalHandler implements JobHandler {
  readonly kind = 'FEDERATED_LOCAL' as const;

  constructor(
    private readonly deps: {
      env: Env;
      prisma: PrismaClient;
      storage: ObjectStorage;
      queue: JobQueue;
      logger: Logger;
    },
  ) {}

  async run(context: JobContext): Promise<JobOutcome> {
    const { prisma, storage, queue } = this.deps;
    const { job, attempt } = context;
    const local = job.config as unknown as FederatedLocalContext;
    const loaded = await loadRun(prisma, job.projectId, local.runId);
    const { run, config } = loaded;
    const round = await prisma.federatedRound.findUnique({
      where: { runId_number: { runId: run.id, number: local.round } },
    });
    if (run.status !== 'RUNNING' || round?.status !== 'OPEN') {
      return { result: { skipped: `round ${local.round} is not open` } };
    }
    const participant = run.participants.find(
      (p) => p.id === local.participantId,
    );
    if (!participant?.datasetId) {
      throw ChorusError.notFound('FederatedParticipant', local.participantId);
    }
    const base = await prisma.modelVersion.findUniqueOrThrow({
      where: { id: round.baseVersionId },
    });
    const updateKey = federatedKeys(job.projectId, run.id).update(
      local.round,
      participant.id,
      attempt,
    );
    const epochs = loaded.training.options.epochs;
    const end = await superviseChild(
      context,
      {
        storage: childStorage(this.deps.env),
        artifactKey: updateKey,
        updateKey,
        spec: loaded.training.spec,
        sources: [loaded.siloSource(participant.datasetId)],
        options: {
          ...loaded.training.options,
          // Each silo shuffles differently, every round.
          seed:
            config.seed * 1000 +
            local.round * 100 +
            run.participants.indexOf(participant),
        },
        base: {
          key: base.artifactKey,
          headsKey:
            config.aggregate === 'backbone'
              ? (participant.headsKey ?? undefined)
              : undefined,
          proximalMu: config.strategy === 'fedprox' ? config.mu : undefined,
        },
      },
      async (message) => {
        if (message.type === 'epoch') {
          await context.reportProgress(
            Math.min(0.99, message.epoch / epochs),
            `epoch ${message.epoch} of round ${local.round}`,
          );
        }
      },
    );
    if (end.type === 'failed') {
      throw end.code === 'BAD_USER_INPUT'
        ? ChorusError.badInput(end.field ?? 'config', end.message)
        : new Error(`Local training failed: ${end.message}`);
    }
    if (end.status === 'cancelled') {
      await storage.remove(updateKey).catch(() => undefined);
      const row = await prisma.job.findUnique({
        where: { id: job.id },
        select: { status: true },
      });
      if (row?.status !== 'CANCELLED') {
        throw new Error(`Local training of job ${job.id} was interrupted.`);
      }

      return { result: { cancelled: true } };
    }
    try {
      await context.commit(async (tx) => {
        await acceptUpdate(tx, queue, {
          projectId: job.projectId,
          runId: run.id,
          round: local.round,
          participantId: participant.id,
          objectKey: updateKey,
          sampleCount: Math.max(1, end.trainRows ?? 1),
          // Measured against the global weights when the round aggregates.
          norm: null,
          clipped: false,
        });
        if (config.aggregate === 'backbone') {
          await tx.federatedParticipant.update({
            where: { id: participant.id },
            data: { headsKey: updateKey },
          });
        }
      });
    } catch (error) {
      if (error instanceof ChorusError && error.code === 'CONFLICT') {
        // The round closed (its deadline passed) while this silo trained.
        await storage.remove(updateKey).catch(() => undefined);

        return { result: { stale: true, message: error.message } };
      }
      throw error;
    }

    return {
      result: { round: local.round, sampleCount: end.trainRows, updateKey },
    };
  }
}
