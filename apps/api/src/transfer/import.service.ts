import { createHash, randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';

import type { Prisma, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import { encodeWeights } from '#libs/federation';
import {
  importArtifactBackbone,
  importBackbone,
  TrainingConfigError,
  unzipArtifact,
  type ImportedBackbone,
} from '#libs/training';

import { Principal } from '../auth/principal';
import { nameField, parseInput } from '../common/input';
import { PRISMA, STORAGE } from '../core/tokens';
import { versionJson } from '../models/models.service';
import { ObjectStorage } from '#libs/storage';

export interface ImportFiles {
  artifact?: Buffer;
  model?: Buffer;
  weights?: Buffer;
}

/** Imports backbones made elsewhere as versions fineTune can start from. */
@Injectable()
export class ImportService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(STORAGE) private readonly storage: ObjectStorage,
  ) {}

  async import(
    principal: Principal,
    input: { name?: string; features?: string; files: ImportFiles },
  ) {
    const name = parseInput(nameField(100), input.name, 'name');
    const { files } = input;
    const given = input.features
      ?.split(',')
      .map((f) => f.trim())
      .filter(Boolean);
    let imported: ImportedBackbone;
    let stored: Buffer;
    let source: 'chorus-artifact' | 'tfjs-layers';
    try {
      if (files.artifact) {
        if (files.model || files.weights) {
          throw ChorusError.badInput(
            'artifact',
            'Send either an "artifact" part, or "model" and "weights" parts, not both.',
          );
        }
        const artifact = await unzipArtifact(files.artifact).catch(
          (error: Error) => {
            throw ChorusError.badInput(
              'artifact',
              `artifact is not a Chorus artifact zip: ${error.message}`,
            );
          },
        );
        imported = importArtifactBackbone(artifact);
        stored = files.artifact;
        source = 'chorus-artifact';
      } else {
        if (!files.model || !files.weights) {
          throw ChorusError.badInput(
            files.model ? 'weights' : 'model',
            'Send a tfjs layers model as "model" (model.json) and ' +
              '"weights" (its weight file), or a Chorus artifact as ' +
              '"artifact".',
          );
        }
        imported = importBackbone(
          files.model.toString('utf8'),
          new Uint8Array(files.weights),
        );
        stored = encodeWeights(imported.weights);
        source = 'tfjs-layers';
      }
    } catch (error) {
      if (error instanceof TrainingConfigError) {
        throw ChorusError.badInput(error.field, error.message);
      }
      throw error;
    }
    const features =
      imported.manifest?.features.map((f) => f.column) ?? given ?? [];
    const modelId = randomUUID();
    const extension = source === 'tfjs-layers' ? 'weights' : 'zip';
    const key =
      `projects/${principal.projectId}/models/${modelId}/artifacts/` +
      `import-${randomUUID()}.${extension}`;
    await this.storage.put(
      key,
      stored,
      stored.length,
      source === 'tfjs-layers' ? 'application/octet-stream' : 'application/zip',
    );
    try {
      const version = await this.prisma.$transaction(async (tx) => {
        await tx.model.create({
          data: {
            id: modelId,
            projectId: principal.projectId,
            name,
            spec: {
              features,
              backbone: imported.backbone,
              inputWidth: imported.inputWidth,
            } as unknown as Prisma.InputJsonValue,
          },
        });

        return tx.modelVersion.create({
          data: {
            projectId: principal.projectId,
            modelId,
            number: 1,
            artifactKey: key,
            sha256: createHash('sha256').update(stored).digest('hex'),
            sizeBytes: BigInt(stored.length),
            metrics: (imported.manifest?.metrics ??
              {}) as Prisma.InputJsonValue,
            lineage: {
              kind: 'imported',
              source,
              uploadSha256: createHash('sha256')
                .update(files.artifact ?? files.weights!)
                .digest('hex'),
              tasks: imported.manifest?.tasks.map((t) => t.name) ?? [],
            },
            backend: 'import',
          },
        });
      });

      return versionJson(version);
    } catch (error) {
      // No version row: the object must not outlive the failed import.
      await this.storage.remove(key).catch(() => undefined);
      throw error;
    }
  }
}
