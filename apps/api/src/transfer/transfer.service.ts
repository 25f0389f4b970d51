import { Inject, Injectable } from '@nestjs/common';
import { z } from 'zod';

import type { DatasetSchema } from '#libs/datasets';
import type { Prisma, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import {
  fineTuneOptionsSchema,
  mergeStrategySchema,
  trainingConfigSchema,
  type FineTuneJobConfig,
  type MergeJobConfig,
  type StoredModelSpec,
} from '#libs/jobs';

import { Principal } from '../auth/principal';
import { nameField, parseId, parseInput } from '../common/input';
import { PRISMA } from '../core/tokens';
import { JobsService } from '../jobs/jobs.service';
import { checkTrainingRun } from '../models/models.service';

const fineTuneInputSchema = z.object({
  taskIds: z
    .array(z.uuid('must be task ids'))
    .min(1, 'must list at least one task')
    .optional()
    .nullable(),
  features: z.array(z.string().min(1)).min(1).optional().nullable(),
  modelName: nameField(100).optional().nullable(),
  freeze: fineTuneOptionsSchema.shape.freeze.optional().nullable(),
  freezeHeads: z.array(z.string().min(1)).optional().nullable(),
  backboneLearningRate: z.number().positive().max(10).optional().nullable(),
  headLearningRate: z.number().positive().max(10).optional().nullable(),
  config: z.unknown().optional().nullable(),
});

const mergeInputSchema = z.object({
  sources: z
    .array(
      z.object({
        versionId: z.uuid('must be a version id'),
        weight: z.number().positive().optional().nullable(),
      }),
    )
    .min(2, 'must list at least two versions')
    .max(64, 'must list at most 64 versions'),
  strategy: mergeStrategySchema,
  trimRatio: z.number().min(0).lt(0.5).optional().nullable(),
});

/** Fine-tunes and merges: new versions made from existing ones. */
@Injectable()
export class TransferService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    private readonly jobs: JobsService,
  ) {}

  /**
   * Queues a FINE_TUNE job from a base version. The target model (the
   * base's, with any new tasks connected, or a new one) and the job are
   * written in one transaction; a bad config writes nothing.
   */
  async fineTune(principal: Principal, baseVersionId: string, raw: unknown) {
    parseId(baseVersionId, 'baseVersionId');
    const input = parseInput(fineTuneInputSchema, raw ?? {});
    const options = parseInput(
      trainingConfigSchema,
      input.config ?? {},
      'input.config',
    );
    const base = await this.prisma.modelVersion.findFirst({
      where: { id: baseVersionId, projectId: principal.projectId },
      include: { model: { include: { tasks: true } } },
    });
    if (!base) {
      throw ChorusError.notFound('ModelVersion', baseVersionId);
    }
    const baseSpec = base.model.spec as unknown as StoredModelSpec;
    const taskIds = input.taskIds ?? base.model.tasks.map((t) => t.id);
    if (taskIds.length === 0) {
      throw ChorusError.badInput(
        'input.taskIds',
        `input.taskIds: the base model ${base.modelId} has no tasks; list the tasks to train.`,
      );
    }
    const tasks = await this.prisma.task.findMany({
      where: { id: { in: taskIds }, projectId: principal.projectId },
      include: { dataset: true },
    });
    const unknown = taskIds.find((id) => !tasks.some((t) => t.id === id));
    if (unknown) {
      throw ChorusError.notFound('Task', unknown);
    }
    const notReady = tasks.find((t) => t.dataset.status !== 'READY');
    if (notReady) {
      throw ChorusError.conflict(
        `Dataset ${notReady.datasetId} of task ${notReady.name} is ` +
          `${notReady.dataset.status}, not READY; fine-tune once ingestion ` +
          `has finished.`,
        { datasetId: notReady.datasetId },
      );
    }
    const features = input.features ?? baseSpec.features;
    if (!features || features.length === 0) {
      throw ChorusError.badInput(
        'input.features',
        'input.features: the base (an imported backbone) names no input ' +
          'columns; list the columns of your dataset it should read.',
      );
    }
    const sameFeatures =
      JSON.stringify(features) === JSON.stringify(baseSpec.features);
    if (!sameFeatures && !input.modelName) {
      throw ChorusError.badInput(
        'input.modelName',
        `input.features differ from model ${base.modelId}'s inputs, so the ` +
          `result is a new model: give input.modelName.`,
      );
    }
    const schema = tasks[0].dataset.schema as DatasetSchema | null;
    const columns = new Set(schema?.columns.map((c) => c.name) ?? []);
    const missing = features
      .map((f) => (typeof f === 'string' ? f : f.column))
      .find((f) => !columns.has(f));
    if (missing) {
      throw ChorusError.badInput(
        'input.features',
        `input.features: column ${missing} is not in dataset ` +
          `${tasks[0].datasetId}; fine-tune tasks on data with the same ` +
          `input columns, or list the columns to read.`,
      );
    }
    const inputs = new Set(
      features.map((f) => (typeof f === 'string' ? f : f.column)),
    );
    const clash = tasks.find((t) => t.targets.some((c) => inputs.has(c)));
    if (clash) {
      throw ChorusError.badInput(
        'input.taskIds',
        `input.taskIds: task ${clash.name} predicts ` +
          `${clash.targets.join(', ')}, which the model reads as input; give ` +
          `input.features without it (and input.modelName).`,
      );
    }
    const baseTasks = Object.keys(
      (base.metrics ?? {}) as Record<string, unknown>,
    );
    const headNames = new Set([
      ...baseTasks,
      ...Object.keys((base.taskArtifacts ?? {}) as Record<string, unknown>),
    ]);
    const frozenHead = (input.freezeHeads ?? []).find(
      (name) => !headNames.has(name) || !tasks.some((t) => t.name === name),
    );
    if (frozenHead) {
      throw ChorusError.badInput(
        'input.freezeHeads',
        `input.freezeHeads names "${frozenHead}", which is not a head of ` +
          `both the base and the tasks trained; the base's heads are ` +
          `${[...headNames].join(', ') || 'none'}.`,
      );
    }
    const fineTune = fineTuneOptionsSchema.parse({
      freeze: input.freeze ?? { kind: 'none' },
      freezeHeads: input.freezeHeads ?? [],
      ...(input.backboneLearningRate
        ? { backboneLearningRate: input.backboneLearningRate }
        : {}),
      ...(input.headLearningRate
        ? { headLearningRate: input.headLearningRate }
        : {}),
    });
    if (fineTune.freeze.kind === 'two-stage') {
      if (fineTune.freeze.frozenEpochs >= options.epochs) {
        throw ChorusError.badInput(
          'input.freeze.frozenEpochs',
          `input.freeze.frozenEpochs (${fineTune.freeze.frozenEpochs}) ` +
            `must be less than config.epochs (${options.epochs}), or the ` +
            `backbone never unfreezes.`,
        );
      }
    }
    const spec = { features, backbone: baseSpec.backbone };
    checkTrainingRun(
      { spec, tasks },
      { modelId: '', options },
      (field) => `input.config.${field}`,
    );

    return this.prisma.$transaction(async (tx) => {
      let modelId = base.modelId;
      if (input.modelName) {
        const model = await tx.model.create({
          data: {
            projectId: principal.projectId,
            name: input.modelName,
            spec: spec as unknown as Prisma.InputJsonValue,
            tasks: { connect: tasks.map((t) => ({ id: t.id })) },
          },
        });
        modelId = model.id;
      } else {
        const added = tasks.filter(
          (t) => !base.model.tasks.some((m) => m.id === t.id),
        );
        if (added.length > 0) {
          await tx.model.update({
            where: { id: base.modelId },
            data: { tasks: { connect: added.map((t) => ({ id: t.id })) } },
          });
        }
      }
      const config: FineTuneJobConfig = {
        modelId,
        baseVersionId,
        taskIds,
        options,
        fineTune,
      };

      return this.jobs.submit(
        {
          projectId: principal.projectId,
          kind: 'FINE_TUNE',
          modelId,
          config: config as unknown as Prisma.InputJsonValue,
          datasetIds: [...new Set(tasks.map((t) => t.datasetId))],
        },
        tx,
      );
    });
  }

  /**
   * Queues a MERGE of versions into a new version of the first source's
   * model. Sources must exist in the caller's project (another project's
   * id is NOT_FOUND); architectures are compared by the merge job, which
   * fails with BAD_USER_INPUT naming the first differing layer.
   */
  async merge(principal: Principal, raw: unknown) {
    const input = parseInput(mergeInputSchema, raw);
    const ids = input.sources.map((s) => s.versionId);
    const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
    if (duplicate) {
      throw ChorusError.badInput(
        'input.sources',
        `input.sources lists version ${duplicate} twice.`,
      );
    }
    const versions = await this.prisma.modelVersion.findMany({
      where: { id: { in: ids }, projectId: principal.projectId },
      include: { model: true },
    });
    const unknown = ids.find((id) => !versions.some((v) => v.id === id));
    if (unknown) {
      throw ChorusError.notFound('ModelVersion', unknown);
    }
    const byId = new Map(versions.map((v) => [v.id, v]));
    const first = byId.get(ids[0])!;
    const firstSpec = first.model.spec as unknown as StoredModelSpec;
    for (const [i, id] of ids.entries()) {
      const spec = byId.get(id)!.model.spec as unknown as StoredModelSpec;
      const differs = firstDifference(firstSpec, spec);
      if (differs) {
        throw ChorusError.badInput(
          `input.sources.${i}`,
          `input.sources.${i}: version ${id} cannot be merged with ${ids[0]}: ${differs}.`,
        );
      }
    }
    const sources = await Promise.all(
      input.sources.map(async (source) => ({
        versionId: source.versionId,
        sampleCount: await this.sampleCount(byId.get(source.versionId)!),
        ...(source.weight ? { weight: source.weight } : {}),
      })),
    );
    const config: MergeJobConfig = {
      modelId: first.modelId,
      sources,
      strategy: input.strategy,
      ...(input.trimRatio !== undefined && input.trimRatio !== null
        ? { trimRatio: input.trimRatio }
        : {}),
    };

    return this.jobs.submit({
      projectId: principal.projectId,
      kind: 'MERGE',
      modelId: first.modelId,
      config: config as unknown as Prisma.InputJsonValue,
    });
  }

  /** Training rows behind a version: recorded at training, else its data. */
  private async sampleCount(version: {
    lineage: unknown;
    jobId: string | null;
  }): Promise<number> {
    const lineage = (version.lineage ?? {}) as { trainRows?: number };
    if (lineage.trainRows && lineage.trainRows > 0) {
      return lineage.trainRows;
    }
    if (!version.jobId) {
      return 1;
    }
    const job = await this.prisma.job.findUnique({
      where: { id: version.jobId },
      select: { datasetIds: true },
    });
    const datasets = await this.prisma.dataset.findMany({
      where: { id: { in: job?.datasetIds ?? [] } },
      select: { rowCount: true, split: true },
    });
    const rows = datasets.reduce((sum, d) => {
      const ratio =
        (d.split as { ratios?: { train?: number } })?.ratios?.train ?? 1;

      return sum + Math.round((d.rowCount ?? 0) * ratio);
    }, 0);

    return Math.max(1, rows);
  }
}

/** The first way two models' inputs or backbones differ, if any. */
function firstDifference(
  a: StoredModelSpec,
  b: StoredModelSpec,
): string | undefined {
  const names = (spec: StoredModelSpec) =>
    (spec.features ?? []).map((f) => (typeof f === 'string' ? f : f.column));
  const fa = names(a);
  const fb = names(b);
  for (let i = 0; i < Math.max(fa.length, fb.length); i++) {
    if (fa[i] !== fb[i]) {
      return `input feature ${i} is ${fb[i] ?? 'missing'}, not ${fa[i] ?? 'absent'}`;
    }
  }
  if (a.backbone?.kind !== b.backbone?.kind) {
    return `the backbone is ${b.backbone?.kind}, not ${a.backbone?.kind}`;
  }
  if (a.backbone.kind === 'mlp' && b.backbone.kind === 'mlp') {
    const wa = a.backbone.widths;
    const wb = b.backbone.widths;
    for (let i = 0; i < Math.max(wa.length, wb.length); i++) {
      if (wa[i] !== wb[i]) {
        return `layer backbone/dense_${i} has ${wb[i] ?? 'no'} units, not ${wa[i] ?? 'none'}`;
      }
    }
  }
  if (a.backbone.kind === 'cnn' && b.backbone.kind === 'cnn') {
    const ba = a.backbone.blocks;
    const bb = b.backbone.blocks;
    for (let i = 0; i < Math.max(ba.length, bb.length); i++) {
      if (JSON.stringify(ba[i]) !== JSON.stringify(bb[i])) {
        return (
          `layer backbone/conv_${i} differs ` +
          `(${JSON.stringify(bb[i] ?? null)}, not ` +
          `${JSON.stringify(ba[i] ?? null)})`
        );
      }
    }
  }

  return undefined;
}
