import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { z } from 'zod';

import type { Env } from '#libs/config';
import type { DatasetSchema } from '#libs/datasets';
import type { Prisma, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import { exportGlobalWeights, storeUpdate } from '#libs/federation';
import {
  acceptUpdate,
  assertRoundTakes,
  buildTrainingRun,
  localTrainingConfig,
  cancelRunJobs,
  federatedKeys,
  federatedRunConfigSchema,
  submitRoundJob,
  trainingConfigSchema,
  type FederatedRunConfig,
} from '#libs/jobs';
import { JobQueue } from '#libs/queue';
import { ObjectStorage } from '#libs/storage';

import { Principal } from '../auth/principal';
import { nameField, parseId, parseInput } from '../common/input';
import { PageArgs, pageQuery, toPage } from '../common/pagination';
import { ENV, PRISMA, QUEUE, STORAGE } from '../core/tokens';
import { checkTrainingRun } from '../models/models.service';

const TOKEN_SHAPE = /^chorusfl_[A-Za-z0-9_-]{20,200}$/;

const participantsSchema = z
  .array(
    z.object({
      name: nameField(100).optional().nullable(),
      datasetId: z.uuid('must be a dataset id').optional().nullable(),
      external: z.boolean().optional().nullable(),
    }),
  )
  .min(1, 'must list at least one participant')
  .max(100, 'must list at most 100 participants');

const runInclude = {
  participants: { orderBy: { createdAt: 'asc' } },
  rounds: {
    orderBy: { number: 'asc' },
    include: { _count: { select: { updates: true } } },
  },
} satisfies Prisma.FederatedRunInclude;

/** An external client, authenticated by its run-scoped token. */
export interface ParticipantPrincipal {
  participantId: string;
  runId: string;
  projectId: string;
  name: string;
}

/** Federated runs: start, stop, watch; external clients' rounds. */
@Injectable()
export class FederatedService {
  private readonly logger = new Logger(FederatedService.name);

  private readonly maxUpdateBytes: number;

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(STORAGE) private readonly storage: ObjectStorage,
    @Inject(QUEUE) private readonly queue: JobQueue,
    @Inject(ENV) env: Env,
  ) {
    this.maxUpdateBytes = env.IMPORT_MAX_BYTES;
  }

  /**
   * Validates everything, then writes the run, its participants and the
   * job that opens round 1 in one transaction. External clients' tokens are
   * returned once; only their hashes are kept.
   */
  async start(
    principal: Principal,
    modelId: string,
    rawParticipants: unknown,
    rawConfig: unknown,
    runName?: string,
  ) {
    parseId(modelId, 'modelId');
    const participants = parseInput(
      participantsSchema,
      rawParticipants,
      'participants',
    );
    const config = parseInput(
      federatedRunConfigSchema,
      rawConfig ?? {},
      'config',
    );
    const model = await this.prisma.model.findFirst({
      where: { id: modelId, projectId: principal.projectId },
      include: { tasks: { include: { dataset: true } } },
    });
    if (!model) {
      throw ChorusError.notFound('Model', modelId);
    }
    if (model.tasks.length === 0) {
      throw ChorusError.badInput(
        'modelId',
        `Model ${modelId} has no tasks; a federated run trains a model's tasks.`,
      );
    }
    if (new Set(model.tasks.map((t) => t.datasetId)).size > 1) {
      throw ChorusError.badInput(
        'modelId',
        `Model ${modelId}'s tasks are on several datasets; a federated run ` +
          `needs a model whose tasks share one dataset, which defines ` +
          `preprocessing for every participant.`,
      );
    }
    const reference = model.tasks[0].dataset;
    if (reference.status !== 'READY') {
      throw ChorusError.conflict(
        `Dataset ${reference.id} of model ${modelId} is ${reference.status}, not READY.`,
        { datasetId: reference.id },
      );
    }
    if (config.minClients > participants.length) {
      throw ChorusError.badInput(
        'config.minClients',
        `config.minClients (${config.minClients}) is more than the ` +
          `${participants.length} participant(s).`,
      );
    }
    if (config.initialVersionId) {
      const initial = await this.prisma.modelVersion.findFirst({
        where: {
          id: config.initialVersionId,
          modelId,
          projectId: principal.projectId,
        },
      });
      if (!initial) {
        throw ChorusError.notFound('ModelVersion', config.initialVersionId);
      }
    }
    checkTrainingRun(
      model,
      localTrainingConfig(modelId, config),
      (field) => `config.${field}`,
    );
    const run = buildTrainingRun(model, {
      modelId,
      options: trainingConfigSchema.parse({}),
    });
    const needed = [
      ...run.spec.features.map((f) => (typeof f === 'string' ? f : f.column)),
      ...model.tasks.flatMap((t) => t.targets),
    ];
    const silos = await this.prisma.dataset.findMany({
      where: {
        projectId: principal.projectId,
        id: {
          in: participants.flatMap((p) => (p.datasetId ? [p.datasetId] : [])),
        },
      },
    });
    const resolved = participants.map((p, i) => {
      const field = `participants.${i}`;
      if (!p.datasetId === !p.external) {
        throw ChorusError.badInput(
          field,
          `${field}: give either datasetId (a silo) or external: true (a client of the SDK).`,
        );
      }
      if (p.external) {
        if (!p.name) {
          throw ChorusError.badInput(
            `${field}.name`,
            `${field}.name is required for an external participant.`,
          );
        }

        return { name: p.name, kind: 'EXTERNAL' as const, datasetId: null };
      }
      const silo = silos.find((d) => d.id === p.datasetId);
      if (!silo) {
        throw ChorusError.notFound('Dataset', p.datasetId!);
      }
      if (silo.status !== 'READY') {
        throw ChorusError.conflict(
          `Dataset ${silo.id} (${field}) is ${silo.status}, not READY.`,
          { datasetId: silo.id },
        );
      }
      const columns = new Set(
        ((silo.schema as DatasetSchema | null)?.columns ?? []).map(
          (c) => c.name,
        ),
      );
      const missing = needed.find((c) => !columns.has(c));
      if (missing) {
        throw ChorusError.badInput(
          `${field}.datasetId`,
          `${field}.datasetId: dataset ${silo.id} has no column ` +
            `${missing}; every silo needs the model's input and target ` +
            `columns (${needed.join(', ')}).`,
        );
      }

      return {
        name: p.name ?? silo.name,
        kind: 'SILO' as const,
        datasetId: silo.id,
      };
    });
    const names = resolved.map((p) => p.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) {
      throw ChorusError.badInput(
        'participants',
        `participants: the name "${twice}" is used twice; names must be unique in a run.`,
      );
    }

    return this.prisma.$transaction(async (tx) => {
      const created = await tx.federatedRun.create({
        data: {
          projectId: principal.projectId,
          modelId,
          name: runName ?? `${model.name} federated`,
          config: config as unknown as Prisma.InputJsonValue,
          globalVersionId: config.initialVersionId ?? null,
        },
      });
      const credentials: {
        participantId: string;
        name: string;
        token: string;
      }[] = [];
      for (const p of resolved) {
        const token =
          p.kind === 'EXTERNAL'
            ? `chorusfl_${randomBytes(32).toString('base64url')}`
            : undefined;
        const row = await tx.federatedParticipant.create({
          data: {
            runId: created.id,
            name: p.name,
            kind: p.kind,
            datasetId: p.datasetId,
            tokenHash: token ? hashToken(token) : null,
            tokenPrefix: token ? token.slice(0, 14) : null,
          },
        });
        if (token) {
          credentials.push({ participantId: row.id, name: p.name, token });
        }
      }
      await submitRoundJob(tx, this.queue, principal.projectId, {
        runId: created.id,
        round: 1,
        phase: 'open',
      });
      const run = await tx.federatedRun.findUniqueOrThrow({
        where: { id: created.id },
        include: runInclude,
      });

      return { run: present(run), credentials };
    });
  }

  /** Stops a running run; the current global version stays. */
  async stop(principal: Principal, id: string) {
    const run = await this.find(principal, id);
    if (run.status !== 'RUNNING') {
      throw ChorusError.conflict(
        `Federated run ${id} is ${run.status}; only a RUNNING run can be stopped.`,
      );
    }
    await this.prisma.$transaction(async (tx) => {
      const updated = await tx.federatedRun.updateMany({
        where: { id, status: 'RUNNING' },
        data: { status: 'STOPPED', finishedAt: new Date() },
      });
      if (updated.count === 0) {
        throw ChorusError.conflict(`Federated run ${id} has just ended.`);
      }
      await tx.federatedRound.updateMany({
        where: { runId: id, status: 'OPEN' },
        data: {
          status: 'FAILED',
          error: { code: 'STOPPED', message: 'The run was stopped.' },
          closedAt: new Date(),
        },
      });
      await cancelRunJobs(tx, id);
    });

    return this.find(principal, id);
  }

  async find(principal: Principal, id: string) {
    parseId(id);
    const run = await this.prisma.federatedRun.findFirst({
      where: { id, projectId: principal.projectId },
      include: runInclude,
    });
    if (!run) {
      throw ChorusError.notFound('FederatedRun', id);
    }

    return present(run);
  }

  async list(principal: Principal, args: PageArgs) {
    const query = pageQuery(args);
    const rows = await this.prisma.federatedRun.findMany({
      ...query,
      where: { AND: [query.where, { projectId: principal.projectId }] },
      include: runInclude,
    });

    return toPage(rows.map(present), args);
  }

  /** Resolves an external client's bearer token. */
  async authenticate(
    header: unknown,
    runId: string,
  ): Promise<ParticipantPrincipal> {
    const token =
      typeof header === 'string'
        ? /^Bearer\s+(\S+)$/i.exec(header.trim())?.[1]
        : undefined;
    if (!token || !TOKEN_SHAPE.test(token)) {
      throw ChorusError.unauthenticated(
        'A participant token is required: send "Authorization: Bearer ' +
          '<token>" with the token startFederatedRun returned.',
      );
    }
    const row = await this.prisma.federatedParticipant.findUnique({
      where: { tokenHash: hashToken(token) },
      include: { run: { select: { projectId: true } } },
    });
    if (!row) {
      throw ChorusError.unauthenticated('The participant token is not valid.');
    }
    // A token answers only for its own run: any other run is unknown.
    if (row.runId !== runId) {
      throw ChorusError.notFound('FederatedRun', runId);
    }

    return {
      participantId: row.id,
      runId: row.runId,
      projectId: row.run.projectId,
      name: row.name,
    };
  }

  /** What an external client needs to train its round. */
  async currentRound(participant: ParticipantPrincipal) {
    const run = await this.prisma.federatedRun.findUniqueOrThrow({
      where: { id: participant.runId },
      include: {
        model: { include: { tasks: { include: { dataset: true } } } },
      },
    });
    const config = run.config as unknown as FederatedRunConfig;
    const round = run.round
      ? await this.prisma.federatedRound.findUnique({
          where: { runId_number: { runId: run.id, number: run.round } },
          include: {
            updates: { where: { participantId: participant.participantId } },
          },
        })
      : null;
    const training = buildTrainingRun(
      run.model,
      localTrainingConfig(run.modelId, config),
    );

    return {
      runId: run.id,
      runStatus: run.status,
      round: round?.number ?? null,
      roundStatus: round?.status ?? null,
      deadline: round?.deadline ?? null,
      selected:
        round?.participantIds.includes(participant.participantId) ?? false,
      submitted: (round?.updates.length ?? 0) > 0,
      globalVersionId: round?.baseVersionId ?? run.globalVersionId,
      spec: training.spec,
      options: training.options,
      strategy: config.strategy,
      mu: config.strategy === 'fedprox' ? config.mu : undefined,
      maxSampleCount: config.maxSampleCount,
      /** The schema every participant encodes rows with. */
      schema: run.model.tasks[0].dataset.schema,
    };
  }

  /** The global weights a round trains from, as a weights file stream. */
  async roundWeights(
    participant: ParticipantPrincipal,
    roundNumber: number,
  ): Promise<Readable> {
    const round = await this.roundOf(participant, roundNumber);
    const version = await this.prisma.modelVersion.findUniqueOrThrow({
      where: { id: round.baseVersionId },
    });

    return exportGlobalWeights(this.storage, version.artifactKey);
  }

  /**
   * Validates an update while streaming it to storage, then counts it in
   * its round. Anything wrong (shape, dtype, non-finite values, norm,
   * truncation) is BAD_USER_INPUT naming the tensor; a closed round or a
   * second update is CONFLICT; nothing rejected is kept.
   */
  async submitUpdate(
    participant: ParticipantPrincipal,
    roundNumber: number,
    sampleCountRaw: unknown,
    body: Readable,
  ) {
    const run = await this.prisma.federatedRun.findUniqueOrThrow({
      where: { id: participant.runId },
    });
    const config = run.config as unknown as FederatedRunConfig;
    const sampleCount = Number(sampleCountRaw);
    if (!Number.isInteger(sampleCount) || sampleCount < 1) {
      throw ChorusError.badInput(
        'sampleCount',
        'sampleCount must be a whole number of training rows, 1 or more.',
      );
    }
    const round = await this.roundOf(participant, roundNumber);
    // Refused before the body is read; checked again, under a lock, when
    // the stored update is counted.
    await assertRoundTakes(this.prisma, {
      runId: run.id,
      round: roundNumber,
      participantId: participant.participantId,
    });
    const base = await this.prisma.modelVersion.findUniqueOrThrow({
      where: { id: round.baseVersionId },
    });
    const key = federatedKeys(participant.projectId, run.id).update(
      roundNumber,
      participant.participantId,
      randomBytes(6).toString('hex'),
    );
    // Rejected updates (UpdateRejectedError, BAD_USER_INPUT naming the
    // tensor) leave nothing stored: the upload is aborted.
    const validated = await storeUpdate(this.storage, {
      body,
      key,
      globalKey: base.artifactKey,
      maxNorm: config.clipNorm ?? config.maxUpdateNorm,
      clip: config.clipNorm !== undefined,
      maxBytes: this.maxUpdateBytes,
    });
    const used = Math.min(sampleCount, config.maxSampleCount);
    try {
      await this.prisma.$transaction(async (tx) => {
        await acceptUpdate(tx, this.queue, {
          projectId: participant.projectId,
          runId: run.id,
          round: roundNumber,
          participantId: participant.participantId,
          objectKey: key,
          sampleCount: used,
          norm: validated.norm,
          clipped: validated.clipped,
        });
        if (config.aggregate === 'backbone') {
          await tx.federatedParticipant.update({
            where: { id: participant.participantId },
            data: { headsKey: key },
          });
        }
      });
    } catch (error) {
      await this.storage.remove(key).catch(() => undefined);
      throw error;
    }
    this.logger.log(
      { runId: run.id, round: roundNumber, participant: participant.name },
      'Federated update accepted',
    );

    return {
      runId: run.id,
      round: roundNumber,
      sampleCount: used,
      sampleCountCapped: used < sampleCount,
      norm: validated.norm,
      clipped: validated.clipped,
    };
  }

  private async roundOf(participant: ParticipantPrincipal, number: number) {
    if (!Number.isInteger(number) || number < 1) {
      throw ChorusError.badInput(
        'round',
        'round must be a whole number, 1 or more.',
      );
    }
    const round = await this.prisma.federatedRound.findUnique({
      where: { runId_number: { runId: participant.runId, number } },
    });
    if (!round) {
      throw ChorusError.conflict(
        `Round ${number} of run ${participant.runId} has not opened; fetch the current round.`,
        { field: 'round' },
      );
    }

    return round;
  }
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

type RunRow = Prisma.FederatedRunGetPayload<{ include: typeof runInclude }>;

function present(run: RunRow) {
  return {
    ...run,
    rounds: run.rounds.map(({ _count, ...round }) => ({
      ...round,
      updates: _count.updates,
    })),
  };
}
