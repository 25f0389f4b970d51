import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';

import type { ObjectStorage } from '#libs/storage';
import { Predictor, selectBackend, unzipArtifact } from '#libs/training';

import { STORAGE } from '../core/tokens';

/** Models kept loaded for predict; the least recently used is dropped. */
const CAPACITY = 8;

/** The parts of a version the cache needs; versions never change. */
export interface CachedVersion {
  id: string;
  projectId: string;
  artifactKey: string;
}

/**
 * A bounded LRU cache of loaded model versions, by version id. Each entry
 * remembers its version's project, so a cached predict needs no database
 * look-up of the version: versions are immutable and never deleted.
 */
@Injectable()
export class PredictorCache implements OnModuleDestroy {
  private readonly entries = new Map<
    string,
    { projectId: string; predictor: Promise<Predictor> }
  >();
  private backend?: Promise<unknown>;

  constructor(@Inject(STORAGE) private readonly storage: ObjectStorage) {}

  /**
   * The loaded predictor of a version of this project, if cached; a version
   * of another project is never returned.
   */
  cached(versionId: string, projectId: string): Promise<Predictor> | undefined {
    const entry = this.entries.get(versionId);
    if (!entry || entry.projectId !== projectId) {
      return undefined;
    }
    // Map order is insertion order: re-inserting marks it most recent.
    this.entries.delete(versionId);
    this.entries.set(versionId, entry);

    return entry.predictor;
  }

  async get(version: CachedVersion): Promise<Predictor> {
    const cached = this.cached(version.id, version.projectId);
    if (cached) {
      return cached;
    }
    const loading = this.load(version.artifactKey);
    this.entries.set(version.id, {
      projectId: version.projectId,
      predictor: loading,
    });
    loading.catch(() => this.entries.delete(version.id));
    while (this.entries.size > CAPACITY) {
      const [oldest, entry] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      void entry.predictor.then((p) => p.dispose()).catch(() => undefined);
    }

    return loading;
  }

  onModuleDestroy() {
    for (const entry of this.entries.values()) {
      void entry.predictor.then((p) => p.dispose()).catch(() => undefined);
    }
    this.entries.clear();
  }

  private async load(artifactKey: string): Promise<Predictor> {
    this.backend ??= selectBackend();
    await this.backend;
    const chunks: Buffer[] = [];
    for await (const chunk of await this.storage.get(artifactKey)) {
      chunks.push(chunk as Buffer);
    }

    return Predictor.fromArtifact(await unzipArtifact(Buffer.concat(chunks)));
  }
}
