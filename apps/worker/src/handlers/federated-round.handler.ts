import type { Logger } from 'pino';

import type { Env } from '#libs/config';
import type { Job, Prisma, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import { aggregateRound } from '#libs/federation';
import {
  cancelRunJobs,
  federatedKeys,
  submitJob,
  submitRoundJob,
  type FederatedLocalContext,
  type FederatedRoundJobConfig,
} from '#libs/jobs';
import type { JobQueue } from '#libs/queue';
import type { ObjectStorage } from '#libs/storage';

import type { TrainChildInput } from '../training/messages';
import { childStorage, superviseChild } from '../training/supervise';
import { loadRun, sample, type LoadedRun } from './federated-run';
import { attemptKeys, removeUnregisteredArtifacts } from './attempt-keys';
import { JobContext, JobHandler, JobOutcome } from './job-handler';
import { registerVersion } from './versions';

/**
 * Drives a federated run one round at a time. `open` makes the initial
 * global version if there is none, picks the round's participants, queues
 * the silos' local training and the round's deadline. `close` (queued by
 * the last update, or by the deadline) aggregates the updates into a new
 * global version, evaluates it on every silo's validation split and opens
 * the next round. All state lives in Postgres and the queue, so a run goes
 * on after a platform restart.
 */
export class FederatedRoundHandler implements JobHandler {
  readonly kind = 'FEDERATED_ROUND' as const;

  constructor(
    private readonly deps: {
      env: Env;
      prisma: PrismaClient;
      storage: ObjectStorage;
      queue: JobQueue;
      logger: Logger;
    },
  ) {}

  async failed(job: Job, attempt: number): Promise<void> {
    const config = job.config as unknown as FederatedRoundJobConfig;
    const run = await this.deps.prisma.federatedRun.findFirst({
      where: { id: config.runId, projectId: job.projectId },
      select: { modelId: true },
    });
    if (run) {
      await removeUnregisteredArtifacts(this.deps, job, run.modelId, {
        upTo: attempt,
      });
    }
  }

  async run(context: JobContext): Promise<JobOutcome> {
    const { job } = context;
    const config = job.config as unknown as FederatedRoundJobConfig;
    const loaded = await loadRun(this.deps.prisma, job.projectId, config.runId);
    if (loaded.run.status !== 'RUNNING') {
      return { result: { skipped: `run is ${loaded.run.status}` } };
    }

    return config.phase === 'open'
      ? this.open(context, loaded, config.round)
      : this.close(context, loaded, config.round);
  }

  private childInput(
    context: JobContext,
    loaded: LoadedRun,
    extra: Partial<TrainChildInput>,
  ): TrainChildInput {
    return {
      storage: childStorage(this.deps.env),
      artifactKey: attemptKeys(context.job, context.attempt, loaded.run.modelId)
        .artifact,
      spec: loaded.training.spec,
      sources: [loaded.reference],
      options: loaded.training.options,
      ...extra,
    };
  }

  private async open(
    context: JobContext,
    loaded: LoadedRun,
    round: number,
  ): Promise<JobOutcome> {
    const { prisma, queue } = this.deps;
    const { job } = context;
    const { run, config } = loaded;
    const existing = await prisma.federatedRound.findUnique({
      where: { runId_number: { runId: run.id, number: round } },
    });
    if (existing) {
      return { result: { skipped: `round ${round} is open already` } };
    }
    let globalVersionId = run.globalVersionId;
    if (!globalVersionId) {
      const input = this.childInput(context, loaded, { mode: 'init' });
      const end = await superviseChild(context, input);
      if (end.type === 'failed') {
        throw failure(end);
      }
      const version = await context.commit(async (tx) => {
        const created = await registerVersion(tx, {
          projectId: job.projectId,
          modelId: run.modelId,
          jobId: job.id,
          artifactKey: input.artifactKey,
          sha256: end.sha256!,
          sizeBytes: end.sizeBytes!,
          lineage: { kind: 'federated', runId: run.id, round: 0 },
          backend: job.backend ?? 'unknown',
        });
        await tx.federatedRun.update({
          where: { id: run.id },
          data: { globalVersionId: created.id },
        });

        return created;
      });
      await removeUnregisteredArtifacts(this.deps, job, run.modelId, {
        keep: context.attempt,
      });
      globalVersionId = version.id;
    }
    const count = Math.min(
      run.participants.length,
      Math.max(
        config.minClients,
        Math.ceil(config.fractionPerRound * run.participants.length),
      ),
    );
    const chosen = sample(run.participants, count, config.seed * 7919 + round);
    const deadline = new Date(Date.now() + config.roundTimeoutSeconds * 1000);
    await context.commit(async (tx) => {
      await tx.federatedRound.create({
        data: {
          runId: run.id,
          number: round,
          participantIds: chosen.map((p) => p.id),
          baseVersionId: globalVersionId,
          deadline,
        },
      });
      await tx.federatedRun.update({
        where: { id: run.id },
        data: { round },
      });
      for (const participant of chosen) {
        if (participant.kind === 'SILO') {
          const local: FederatedLocalContext = {
            runId: run.id,
            round,
            participantId: participant.id,
          };
          await submitJob(tx, queue, {
            projectId: job.projectId,
            kind: 'FEDERATED_LOCAL',
            modelId: run.modelId,
            config: local as unknown as Prisma.InputJsonValue,
            datasetIds: [participant.datasetId!],
          });
        }
      }
      await submitRoundJob(
        tx,
        queue,
        job.projectId,
        { runId: run.id, round, phase: 'close' },
        deadline,
      );
    });
    await context.reportProgress(
      (round - 1) / config.rounds,
      `round ${round} opened with ${chosen.length} participants`,
    );

    return {
      result: {
        round,
        participants: chosen.map((p) => p.name),
        deadline: deadline.toISOString(),
      },
    };
  }

  private async close(
    context: JobContext,
    loaded: LoadedRun,
    round: number,
  ): Promise<JobOutcome> {
    const { prisma, storage, queue } = this.deps;
    const { job, attempt } = context;
    const { run, config } = loaded;
    // One closer per round: the first to move it from OPEN, or a retry of
    // that same job.
    const claimed = await context.commit((tx) =>
      tx.federatedRound.updateMany({
        where: {
          runId: run.id,
          number: round,
          OR: [
            { status: 'OPEN' },
            {
              status: 'AGGREGATING',
              aggregation: { path: ['jobId'], equals: job.id },
            },
          ],
        },
        data: { status: 'AGGREGATING', aggregation: { jobId: job.id } },
      }),
    );
    if (claimed.count === 0) {
      return { result: { skipped: `round ${round} is closed already` } };
    }
    const current = await prisma.federatedRound.findUniqueOrThrow({
      where: { runId_number: { runId: run.id, number: round } },
      include: { updates: { orderBy: { createdAt: 'asc' } } },
    });
    const updates = current.updates;
    if (updates.length < config.minClients) {
      const message =
        `Round ${round} received ${updates.length} update(s) by its ` +
        `deadline, fewer than minClients (${config.minClients}); the run ` +
        `stops and version ${current.baseVersionId} stays the global model.`;
      await context.commit(async (tx) => {
        await tx.federatedRound.update({
          where: { runId_number: { runId: run.id, number: round } },
          data: {
            status: 'FAILED',
            error: { code: 'NOT_ENOUGH_UPDATES', message },
            closedAt: new Date(),
          },
        });
        await tx.federatedRun.update({
          where: { id: run.id },
          data: {
            status: 'FAILED',
            error: { code: 'NOT_ENOUGH_UPDATES', message, round },
            finishedAt: new Date(),
          },
        });
        await cancelRunJobs(tx, run.id);
      });
      await Promise.all(
        updates.map((u) => storage.remove(u.objectKey).catch(() => undefined)),
      );

      return { result: { round, failed: message } };
    }
    const base = await prisma.modelVersion.findUniqueOrThrow({
      where: { id: current.baseVersionId },
    });
    const keys = federatedKeys(job.projectId, run.id);
    const outputKey = attemptKeys(job, attempt, run.modelId).artifact;
    const stateKey = keys.serverState(round, attempt);
    const aggregated = await aggregateRound(storage, {
      global: { key: base.artifactKey },
      updates: updates.map((u) => ({
        key: u.objectKey,
        sampleCount: u.sampleCount,
      })),
      strategy: config.strategy,
      scope: config.aggregate,
      serverLearningRate: config.serverLearningRate,
      beta1: config.beta1,
      beta2: config.beta2,
      tau: config.tau,
      serverState: run.serverStateKey ? { key: run.serverStateKey } : null,
      clipNorm: config.clipNorm,
      noiseMultiplier: config.noiseMultiplier,
      seed: config.seed * 7919 + round,
      outputKey,
      stateOutputKey: ['fedadam', 'fedyogi'].includes(config.strategy)
        ? stateKey
        : undefined,
    });
    await context.reportProgress(
      (round - 0.5) / config.rounds,
      `round ${round} aggregated ${updates.length} update(s)`,
    );
    const metrics: Record<string, Record<string, Record<string, number>>> = {};
    for (const participant of run.participants) {
      if (participant.kind !== 'SILO' || !participant.datasetId) {
        continue;
      }
      const end = await superviseChild(
        context,
        this.childInput(context, loaded, {
          mode: 'evaluate',
          base: {
            key: outputKey,
            headsKey:
              config.aggregate === 'backbone'
                ? (participant.headsKey ?? undefined)
                : undefined,
          },
          sources: [loaded.siloSource(participant.datasetId)],
        }),
      );
      if (end.type === 'failed') {
        throw failure(end);
      }
      metrics[participant.name] = end.metrics ?? {};
    }
    const last = round >= config.rounds;
    const sampleTotal = updates.reduce((n, u) => n + u.sampleCount, 0);
    const version = await context.commit(async (tx) => {
      const created = await registerVersion(tx, {
        projectId: job.projectId,
        modelId: run.modelId,
        jobId: job.id,
        artifactKey: outputKey,
        sha256: aggregated.sha256,
        sizeBytes: aggregated.sizeBytes,
        metrics: meanMetrics(metrics),
        lineage: {
          kind: 'federated',
          runId: run.id,
          round,
          strategy: config.strategy,
          updates: updates.length,
          trainRows: sampleTotal,
          ...(config.noiseMultiplier !== undefined
            ? { noiseMultiplier: config.noiseMultiplier }
            : {}),
        },
        backend: 'cpu',
        parents: [{ versionId: base.id, relation: 'previous' }],
      });
      for (const [i, update] of updates.entries()) {
        await tx.federatedUpdate.update({
          where: {
            runId_round_participantId: {
              runId: run.id,
              round,
              participantId: update.participantId,
            },
          },
          data: { norm: aggregated.updateNorms[i] ?? null },
        });
      }
      await tx.federatedRound.update({
        where: { runId_number: { runId: run.id, number: round } },
        data: {
          status: 'COMPLETED',
          versionId: created.id,
          metrics: metrics as Prisma.InputJsonValue,
          aggregation: {
            jobId: job.id,
            participants: updates.map((u) => u.participantId),
            sampleCounts: updates.map((u) => u.sampleCount),
            updateNorms: aggregated.updateNorms,
            noiseStd: aggregated.noiseStd,
          },
          closedAt: new Date(),
        },
      });
      await tx.federatedRun.update({
        where: { id: run.id },
        data: {
          globalVersionId: created.id,
          serverStateKey: aggregated.stateKey ?? run.serverStateKey,
          ...(last ? { status: 'SUCCEEDED', finishedAt: new Date() } : {}),
        },
      });
      if (last) {
        await tx.modelAlias.upsert({
          where: { modelId_name: { modelId: run.modelId, name: config.alias } },
          create: {
            modelId: run.modelId,
            name: config.alias,
            versionId: created.id,
          },
          update: { versionId: created.id },
        });
      } else {
        await submitRoundJob(tx, queue, job.projectId, {
          runId: run.id,
          round: round + 1,
          phase: 'open',
        });
      }

      return created;
    });
    await removeUnregisteredArtifacts(this.deps, job, run.modelId, {
      keep: attempt,
    });
    await context.reportProgress(
      round / config.rounds,
      `round ${round} stored as version ${version.number}`,
      flatten(metrics),
    );

    return {
      result: {
        round,
        versionId: version.id,
        version: version.number,
        metrics,
      },
    };
  }
}

function failure(end: { code: string; message: string; field?: string }) {
  return end.code === 'BAD_USER_INPUT'
    ? ChorusError.badInput(
        end.field ? `config.${end.field}` : 'config',
        end.message,
      )
    : new Error(end.message);
}

/** Each task's metrics averaged over the participants that report them. */
function meanMetrics(
  byParticipant: Record<string, Record<string, Record<string, number>>>,
) {
  const sums: Record<string, Record<string, { sum: number; n: number }>> = {};
  for (const tasks of Object.values(byParticipant)) {
    for (const [task, metrics] of Object.entries(tasks)) {
      for (const [name, value] of Object.entries(metrics)) {
        if (Number.isFinite(value)) {
          const slot = ((sums[task] ??= {})[name] ??= { sum: 0, n: 0 });
          slot.sum += value;
          slot.n++;
        }
      }
    }
  }

  return Object.fromEntries(
    Object.entries(sums).map(([task, metrics]) => [
      task,
      Object.fromEntries(
        Object.entries(metrics).map(([name, s]) => [name, s.sum / s.n]),
      ),
    ]),
  );
}

function flatten(
  byParticipant: Record<string, Record<string, Record<string, number>>>,
) {
  const out: Record<string, number> = {};
  for (const [participant, tasks] of Object.entries(byParticipant)) {
    for (const [task, metrics] of Object.entries(tasks)) {
      for (const [name, value] of Object.entries(metrics)) {
        if (Number.isFinite(value)) {
          out[`${participant}.${task}.${name}`] = value;
        }
      }
    }
  }

  return out;
}
