import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';

import { Inject, Injectable } from '@nestjs/common';

import type { Env } from '#libs/config';
import type { Prisma, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import {
  openArtifactWeights,
  readRawTensors,
  storeWeights,
} from '#libs/federation';
import { ObjectStorage } from '#libs/storage';
import {
  artifactBackbone,
  bytesOfSpecs,
  importWeights,
  planBackboneImport,
  TrainingConfigError,
  type ArtifactManifest,
  type BackboneOptions,
} from '#libs/training';
import { trackedUpload } from '#libs/uploads';

import { Principal } from '../auth/principal';
import { nameField, parseInput } from '../common/input';
import { ENV, PRISMA, STORAGE } from '../core/tokens';
import { versionJson } from '../models/models.service';

/** A part of an import stored as it arrived: its key, size and sha256. */
export interface StagedFile {
  key: string;
  bytes: number;
  sha256: string;
}

/**
 * One import while its parts arrive: the model it will create, the files
 * stored under that model's artifacts so far, and model.json (small, kept
 * in memory). {@link ImportService.discard} removes what it stored.
 */
export interface ImportStaging {
  projectId: string;
  modelId: string;
  artifact?: StagedFile;
  weights?: StagedFile;
  modelJson?: Buffer;
  /** Objects to remove if the import fails. */
  stored: string[];
}

/** What was checked of an import, before anything is registered. */
interface CheckedImport {
  backbone: BackboneOptions;
  inputWidth: number;
  manifest?: ArtifactManifest;
  artifact: { key: string; sha256: string; sizeBytes: number };
  source: 'chorus-artifact' | 'tfjs-layers';
  uploadSha256: string;
}

/**
 * Imports backbones made elsewhere as versions fineTune can start from.
 * Uploads stream into object storage and are checked from there a tensor
 * at a time, so an import holds no whole model in memory.
 */
@Injectable()
export class ImportService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(STORAGE) private readonly storage: ObjectStorage,
    @Inject(ENV) private readonly env: Env,
  ) {}

  begin(principal: Principal): ImportStaging {
    return {
      projectId: principal.projectId,
      modelId: randomUUID(),
      stored: [],
    };
  }

  /** Streams an uploaded file into storage, at most IMPORT_MAX_BYTES. */
  async stage(
    staging: ImportStaging,
    field: 'artifact' | 'weights',
    body: Readable,
  ): Promise<StagedFile> {
    const key = this.artifactKey(
      staging,
      field === 'artifact' ? 'zip' : 'upload',
    );
    staging.stored.push(key);
    // Tracked like a dataset upload: should this process die mid-way, the
    // sweep aborts the multipart upload.
    const result = await trackedUpload({
      prisma: this.prisma,
      storage: this.storage,
      projectId: staging.projectId,
      key,
      body,
      partBytes: this.env.UPLOAD_PART_BYTES,
      maxBytes: this.env.IMPORT_MAX_BYTES,
      contentType:
        field === 'artifact' ? 'application/zip' : 'application/octet-stream',
    });

    return { key, bytes: result.bytes, sha256: result.sha256 };
  }

  /** Removes every object the import stored; for a failed import. */
  async discard(staging: ImportStaging): Promise<void> {
    await this.storage.removeKeys(staging.stored).catch(() => undefined);
  }

  async import(
    principal: Principal,
    staging: ImportStaging,
    input: { name?: string; features?: string },
  ) {
    const name = parseInput(nameField(100), input.name, 'name');
    const given = input.features
      ?.split(',')
      .map((f) => f.trim())
      .filter(Boolean);
    let checked: CheckedImport;
    try {
      checked = staging.artifact
        ? await this.checkArtifact(staging)
        : await this.convertLayersModel(staging);
    } catch (error) {
      if (error instanceof TrainingConfigError) {
        throw ChorusError.badInput(error.field, error.message);
      }
      throw error;
    }
    const features =
      checked.manifest?.features.map((f) => f.column) ?? given ?? [];
    const { modelId } = staging;
    const version = await this.prisma.$transaction(async (tx) => {
      await tx.model.create({
        data: {
          id: modelId,
          projectId: principal.projectId,
          name,
          spec: {
            features,
            backbone: checked.backbone,
            inputWidth: checked.inputWidth,
          } as unknown as Prisma.InputJsonValue,
        },
      });

      return tx.modelVersion.create({
        data: {
          projectId: principal.projectId,
          modelId,
          number: 1,
          artifactKey: checked.artifact.key,
          sha256: checked.artifact.sha256,
          sizeBytes: BigInt(checked.artifact.sizeBytes),
          metrics: (checked.manifest?.metrics ?? {}) as Prisma.InputJsonValue,
          lineage: {
            kind: 'imported',
            source: checked.source,
            uploadSha256: checked.uploadSha256,
            tasks: checked.manifest?.tasks.map((t) => t.name) ?? [],
          },
          backend: 'import',
        },
      });
    });

    return versionJson(version);
  }

  /**
   * A Chorus artifact is registered as uploaded, once its manifest, weight
   * specs and every value (finite) are checked as it streams back.
   */
  private async checkArtifact(staging: ImportStaging): Promise<CheckedImport> {
    const artifact = staging.artifact!;
    if (staging.modelJson || staging.weights) {
      throw ChorusError.badInput(
        'artifact',
        'Send either an "artifact" part, or "model" and "weights" parts, not both.',
      );
    }
    const notZip = (error: Error) =>
      ChorusError.badInput(
        'artifact',
        `artifact is not a Chorus artifact zip: ${error.message}`,
      );
    const reader = await openArtifactWeights(this.storage, artifact.key).catch(
      (error: Error) => {
        throw notZip(error);
      },
    );
    try {
      const backbone = artifactBackbone(reader.manifest, reader.specs);
      try {
        for await (const tensor of reader) {
          if (!tensor.values.every(Number.isFinite)) {
            throw new TrainingConfigError(
              'artifact.weights',
              `weight "${tensor.name}" holds NaN or infinite values.`,
            );
          }
        }
      } catch (error) {
        throw error instanceof TrainingConfigError
          ? error
          : notZip(error as Error);
      }

      return {
        ...backbone,
        artifact: {
          key: artifact.key,
          sha256: artifact.sha256,
          sizeBytes: artifact.bytes,
        },
        source: 'chorus-artifact',
        uploadSha256: artifact.sha256,
      };
    } finally {
      await reader.close();
    }
  }

  /**
   * A tfjs layers model is planned from its model.json, and its weight
   * file, read back a tensor at a time, is written as a Chorus weights file
   * of the backbone; the upload itself is removed.
   */
  private async convertLayersModel(
    staging: ImportStaging,
  ): Promise<CheckedImport> {
    const { modelJson, weights } = staging;
    if (!modelJson || !weights) {
      throw ChorusError.badInput(
        modelJson ? 'weights' : 'model',
        'Send a tfjs layers model as "model" (model.json) and ' +
          '"weights" (its weight file), or a Chorus artifact as ' +
          '"artifact".',
      );
    }
    const plan = planBackboneImport(modelJson.toString('utf8'));
    const declared = bytesOfSpecs(plan.specs);
    if (weights.bytes !== declared) {
      throw new TrainingConfigError(
        'weights',
        `model.json declares ${declared} bytes, got ${weights.bytes}.`,
      );
    }
    const key = this.artifactKey(staging, 'weights');
    staging.stored.push(key);
    const uploaded = readRawTensors(
      await this.storage.get(weights.key),
      plan.specs,
      (_field, reason) => new TrainingConfigError('weights', reason),
    );
    let stored;
    try {
      stored = await storeWeights(
        this.storage,
        key,
        plan.weights.map((w) => ({ name: w.name, shape: w.shape })),
        importWeights(plan, uploaded),
      );
    } finally {
      await uploaded.close();
    }
    await this.storage.remove(weights.key).catch(() => undefined);

    return {
      backbone: plan.backbone,
      inputWidth: plan.inputWidth,
      artifact: { key, ...stored },
      source: 'tfjs-layers',
      uploadSha256: weights.sha256,
    };
  }

  private artifactKey(staging: ImportStaging, extension: string): string {
    return (
      `projects/${staging.projectId}/models/${staging.modelId}/artifacts/` +
      `import-${randomUUID()}.${extension}`
    );
  }
}
