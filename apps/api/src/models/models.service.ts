import { Inject, Injectable, Logger } from '@nestjs/common';
import { z } from 'zod';

import type { DatasetSchema } from '#libs/datasets';
import type { JobCapability, PrismaClient, TaskKind } from '#libs/db';
import { ChorusError } from '#libs/errors';
import {
  buildTrainingRun,
  MAX_JOB_PRIORITY,
  type ModelForTraining,
  type TrainingJobConfig,
  trainingConfigSchema,
  trainingSchemas,
} from '#libs/jobs';
import { ObjectStorage } from '#libs/storage';
import {
  planModel,
  TrainingConfigError,
  validateTrainOptions,
} from '#libs/training';

import { Principal } from '../auth/principal';
import { nameField, parseId, parseInput } from '../common/input';
import { PageArgs, pageQuery, toPage } from '../common/pagination';
import { PRISMA, STORAGE } from '../core/tokens';
import { JobsService } from '../jobs/jobs.service';
import { PredictorCache } from './predictor-cache';

const name = nameField(100);

const FEATURE_TYPES = new Set([
  'numeric',
  'integer',
  'boolean',
  'categorical',
  'image',
]);
const MAX_PREDICT_ROWS = 1000;

export const versionJson = <T extends { sizeBytes: bigint }>(row: T) => ({
  ...row,
  sizeBytes: Number(row.sizeBytes),
});

/** Tasks, models, training jobs, versions, artifacts and predictions. */
@Injectable()
export class ModelsService {
  private readonly logger = new Logger(ModelsService.name);

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(STORAGE) private readonly storage: ObjectStorage,
    private readonly jobs: JobsService,
    private readonly predictors: PredictorCache,
  ) {}

  async createTask(principal: Principal, raw: unknown) {
    const input = parseInput(
      z.object({
        datasetId: z.uuid('must be a dataset id'),
        name,
        kind: z.enum(['REGRESSION', 'BINARY', 'MULTICLASS', 'MULTILABEL']),
        targets: z.array(z.string().min(1)).min(1, 'must name a column'),
        lossWeight: z
          .number()
          .positive('must be greater than 0')
          .optional()
          .nullable(),
      }),
      raw,
    );
    const dataset = await this.prisma.dataset.findFirst({
      where: { id: input.datasetId, projectId: principal.projectId },
    });
    if (!dataset) {
      throw ChorusError.notFound('Dataset', input.datasetId);
    }
    if (input.kind !== 'MULTILABEL' && input.targets.length !== 1) {
      throw ChorusError.badInput(
        'input.targets',
        'input.targets must name exactly one column, except for MULTILABEL tasks.',
      );
    }
    const schema = dataset.schema as DatasetSchema | null;
    if (schema) {
      const columns = schema.columns.map((c) => c.name);
      const missing = input.targets.filter((t) => !columns.includes(t));
      if (missing.length > 0) {
        throw ChorusError.badInput(
          'input.targets',
          `input.targets names ${missing.join(', ')}, not a column of ` +
            `dataset ${dataset.id}; its columns are ${columns.join(', ')}.`,
        );
      }
    }
    const taken = await this.prisma.task.findFirst({
      where: { projectId: principal.projectId, name: input.name },
    });
    if (taken) {
      throw ChorusError.conflict(
        `A task named "${input.name}" exists already in this project; choose another name.`,
        { field: 'input.name' },
      );
    }

    return this.prisma.task.create({
      data: {
        projectId: principal.projectId,
        datasetId: dataset.id,
        name: input.name,
        kind: input.kind as TaskKind,
        targets: input.targets,
        lossWeight: input.lossWeight ?? 1,
      },
    });
  }

  async createModel(principal: Principal, raw: unknown) {
    const input = parseInput(
      z.object({
        name,
        taskIds: z
          .array(z.uuid('must be task ids'))
          .min(1, 'must list at least one task'),
        features: z.array(z.string().min(1)).min(1).optional().nullable(),
        backbone: z.record(z.string(), z.unknown()).optional().nullable(),
      }),
      raw,
    );
    const tasks = await this.prisma.task.findMany({
      where: { id: { in: input.taskIds }, projectId: principal.projectId },
      include: { dataset: true },
    });
    const unknown = input.taskIds.find((id) => !tasks.some((t) => t.id === id));
    if (unknown) {
      throw ChorusError.notFound('Task', unknown);
    }
    const pending = tasks.find((t) => !t.dataset.schema);
    if (pending) {
      throw ChorusError.conflict(
        `Dataset ${pending.datasetId} has no schema yet (status ` +
          `${pending.dataset.status}); create the model once it is READY.`,
      );
    }
    const schema = tasks[0].dataset.schema as unknown as DatasetSchema;
    const targets = new Set(tasks.flatMap((t) => t.targets));
    const columns = new Map(schema.columns.map((c) => [c.name, c.type]));
    // Inputs are read from every dataset of the model's tasks.
    const lacking = (column: string) =>
      tasks.find(
        (t) =>
          !(t.dataset.schema as unknown as DatasetSchema).columns.some(
            (c) => c.name === column,
          ),
      )?.datasetId;
    const features =
      input.features ??
      schema.columns
        .filter(
          (c) =>
            FEATURE_TYPES.has(c.type) &&
            !targets.has(c.name) &&
            !lacking(c.name),
        )
        .map((c) => c.name);
    const bad = features.find((f) => lacking(f) || targets.has(f));
    if (bad) {
      throw ChorusError.badInput(
        'input.features',
        targets.has(bad)
          ? `input.features lists ${bad}, which is a task target.`
          : `input.features lists ${bad}, which is not a column of dataset ` +
              `${lacking(bad)}; every dataset of the model's tasks must ` +
              `have each input column.`,
      );
    }
    const images = features.some((f) => columns.get(f) === 'image');
    const backbone =
      input.backbone ??
      (images
        ? {
            kind: 'cnn',
            blocks: [{ filters: 8 }, { filters: 16 }],
            dense: [32],
          }
        : { kind: 'mlp', widths: [64, 32] });
    const spec = { features, backbone };
    checkTrainingRun(
      { spec, tasks },
      { modelId: '', options: trainingConfigSchema.parse({}) },
      (option) =>
        option.startsWith('spec.backbone')
          ? `input.backbone${option.slice('spec.backbone'.length)}`
          : option.startsWith('spec.features')
            ? 'input.features'
            : `input.${option}`,
    );

    return this.prisma.model.create({
      data: {
        projectId: principal.projectId,
        name: input.name,
        spec: spec as never,
        tasks: { connect: tasks.map((t) => ({ id: t.id })) },
      },
      include: { tasks: true, versions: true, aliases: true },
    });
  }

  async findModel(principal: Principal, id: string) {
    parseId(id);
    const model = await this.prisma.model.findFirst({
      where: { id, projectId: principal.projectId },
      include: {
        tasks: true,
        versions: { orderBy: { number: 'desc' } },
        aliases: true,
      },
    });
    if (!model) {
      throw ChorusError.notFound('Model', id);
    }

    return { ...model, versions: model.versions.map(versionJson) };
  }

  async listModels(principal: Principal, args: PageArgs) {
    const query = pageQuery(args);
    const rows = await this.prisma.model.findMany({
      ...query,
      where: { AND: [query.where, { projectId: principal.projectId }] },
      include: {
        tasks: true,
        versions: { orderBy: { number: 'desc' } },
        aliases: true,
      },
    });

    return toPage(
      rows.map((row) => ({ ...row, versions: row.versions.map(versionJson) })),
      args,
    );
  }

  /**
   * Validates the config and the model's datasets, then queues a TRAIN job.
   * Nothing is queued for a bad config (BAD_USER_INPUT naming the field) or
   * a dataset that is not READY (CONFLICT).
   */
  async startTraining(
    principal: Principal,
    modelId: string,
    raw: unknown,
    queueing: { capability?: JobCapability; priority?: number } = {},
  ) {
    parseId(modelId, 'modelId');
    const priority = queueing.priority;
    if (
      priority !== undefined &&
      priority !== null &&
      !(Math.abs(priority) <= MAX_JOB_PRIORITY)
    ) {
      throw ChorusError.badInput(
        'priority',
        `priority must be between -${MAX_JOB_PRIORITY} and ` +
          `${MAX_JOB_PRIORITY}; higher runs first, default 0.`,
      );
    }
    const options = parseInput(trainingConfigSchema, raw ?? {}, 'config');
    const model = await this.prisma.model.findFirst({
      where: { id: modelId, projectId: principal.projectId },
      include: { tasks: { include: { dataset: true } } },
    });
    if (!model) {
      throw ChorusError.notFound('Model', modelId);
    }
    const notReady = model.tasks.find((t) => t.dataset.status !== 'READY');
    if (notReady) {
      throw ChorusError.conflict(
        `Dataset ${notReady.datasetId} of task ${notReady.name} is ` +
          `${notReady.dataset.status}, not READY; train once ingestion has ` +
          `finished.`,
        { datasetId: notReady.datasetId },
      );
    }
    const config = { modelId, options };
    checkTrainingRun(model, config, (field) => `config.${field}`);

    return this.jobs.submit({
      projectId: principal.projectId,
      kind: 'TRAIN',
      modelId,
      config: config as never,
      capability: queueing.capability,
      priority: priority ?? undefined,
      datasetIds: [...new Set(model.tasks.map((t) => t.datasetId))],
    });
  }

  async jobMetrics(jobId: string) {
    return this.prisma.jobMetric.findMany({
      where: { jobId },
      orderBy: [
        { epoch: 'asc' },
        { task: 'asc' },
        { split: 'asc' },
        { name: 'asc' },
      ],
    });
  }

  async findVersion(principal: Principal, id: string) {
    parseId(id);
    const version = await this.prisma.modelVersion.findFirst({
      where: { id, projectId: principal.projectId },
    });
    if (!version) {
      throw ChorusError.notFound('ModelVersion', id);
    }

    return versionJson(version);
  }

  async artifactUrl(principal: Principal, id: string, expiresIn: number) {
    const version = await this.findVersion(principal, id);

    return this.storage.presignGet(version.artifactKey, expiresIn);
  }

  /** The whole artifact, or with `task` the backbone plus that head. */
  async openArtifact(principal: Principal, id: string, task?: string) {
    const version = await this.findVersion(principal, id);
    if (task === undefined) {
      return {
        key: version.artifactKey,
        sha256: version.sha256,
        sizeBytes: version.sizeBytes,
        name: `model-${version.modelId}-v${version.number}.zip`,
        stream: await this.storage.get(version.artifactKey),
      };
    }
    const tasks = (version.taskArtifacts ?? {}) as Record<
      string,
      { key: string; sha256: string; sizeBytes: number }
    >;
    const single = tasks[task];
    if (!single) {
      throw ChorusError.badInput(
        'task',
        `Version ${id} has no task "${task}"; its tasks are ` +
          (Object.keys(tasks).join(', ') ||
            'not exported separately (trained before per-task export)') +
          '.',
      );
    }

    return {
      ...single,
      name: `model-${version.modelId}-v${version.number}-${task}.zip`,
      stream: await this.storage.get(single.key),
    };
  }

  /** Points an alias such as `production` at a version of the model. */
  async setAlias(
    principal: Principal,
    modelId: string,
    alias: string,
    versionId: string,
  ) {
    parseId(modelId, 'modelId');
    parseId(versionId, 'versionId');
    if (!/^[a-z][a-z0-9_-]{0,39}$/.test(alias)) {
      throw ChorusError.badInput(
        'alias',
        'alias must be 1 to 40 lower-case letters, digits, _ or -, starting with a letter.',
      );
    }
    const version = await this.prisma.modelVersion.findFirst({
      where: { id: versionId, modelId, projectId: principal.projectId },
    });
    if (!version) {
      throw ChorusError.notFound('ModelVersion', versionId);
    }
    await this.prisma.modelAlias.upsert({
      where: { modelId_name: { modelId, name: alias } },
      create: { modelId, name: alias, versionId },
      update: { versionId },
    });

    return this.findModel(principal, modelId);
  }

  /** The version an alias points at. */
  async resolveAlias(principal: Principal, modelId: string, alias: string) {
    parseId(modelId, 'modelId');
    const row = await this.prisma.modelAlias.findFirst({
      where: {
        modelId,
        name: alias,
        model: { projectId: principal.projectId },
      },
    });
    if (!row) {
      throw ChorusError.notFound('ModelAlias', `${modelId}/${alias}`);
    }

    return row.versionId;
  }

  /** Per-task metrics of two versions side by side. */
  async compareVersions(principal: Principal, a: string, b: string) {
    const [left, right] = await Promise.all([
      this.findVersion(principal, a),
      this.findVersion(principal, b),
    ]);
    const metricsOf = (v: { metrics: unknown }) =>
      (v.metrics ?? {}) as Record<string, Record<string, number>>;
    const keys = new Set<string>();
    for (const version of [left, right]) {
      for (const [task, metrics] of Object.entries(metricsOf(version))) {
        for (const metric of Object.keys(metrics)) {
          keys.add(`${task}\u0000${metric}`);
        }
      }
    }

    return [...keys].sort().map((key) => {
      const [task, metric] = key.split('\u0000');
      const va = metricsOf(left)[task]?.[metric] ?? null;
      const vb = metricsOf(right)[task]?.[metric] ?? null;

      return {
        task,
        metric,
        a: va,
        b: vb,
        delta: va !== null && vb !== null ? vb - va : null,
      };
    });
  }

  async predict(principal: Principal, versionId: string, rows: unknown) {
    parseId(versionId);
    // A cached version skips the look-up: only the key was checked.
    const cached = this.predictors.cached(versionId, principal.projectId);
    const version = cached
      ? undefined
      : await this.findVersion(principal, versionId);
    if (
      !Array.isArray(rows) ||
      rows.length === 0 ||
      rows.length > MAX_PREDICT_ROWS ||
      rows.some((row) => !row || typeof row !== 'object' || Array.isArray(row))
    ) {
      throw ChorusError.badInput(
        'rows',
        `rows must be a list of 1 to ${MAX_PREDICT_ROWS} objects of column values.`,
      );
    }
    if (version && !version.artifactKey.endsWith('.zip')) {
      throw ChorusError.badInput(
        'versionId',
        `Version ${version.id} is an imported backbone without heads; ` +
          `fineTune it with tasks, then predict with the new version.`,
      );
    }
    const predictor = await (cached ??
      this.predictors.get({
        id: version!.id,
        projectId: principal.projectId,
        artifactKey: version!.artifactKey,
      }));

    return predictor.predict(rows as Record<string, unknown>[]);
  }
}

/** Stands in for data when only the options and spec are checked. */
const noBatches = async function* () {};

/**
 * Builds the run and checks it with libs/training against the schemas of
 * its datasets (planning every input and task, without reading rows), so a
 * bad spec or config is refused before anything is stored or queued;
 * errors become BAD_USER_INPUT on the caller's field.
 */
export function checkTrainingRun(
  model: ModelForTraining,
  config: TrainingJobConfig,
  fieldOf: (option: string) => string,
) {
  const run = buildTrainingRun(model, config);
  const schemas = trainingSchemas(model);
  try {
    validateTrainOptions({
      ...run.options,
      spec: run.spec,
      data: (schemas ?? []).map((s) => ({ ...s, train: noBatches })),
    });
    if (schemas) {
      planModel(
        run.spec,
        schemas.map((s) => ({ ...s, train: noBatches })),
      );
    }
  } catch (error) {
    if (error instanceof TrainingConfigError) {
      throw ChorusError.badInput(fieldOf(error.field), error.message);
    }
    throw error;
  }
}
