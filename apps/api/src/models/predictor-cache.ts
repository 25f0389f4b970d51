import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';

import type { ObjectStorage } from '#libs/storage';
import { Predictor, selectBackend, unzipArtifact } from '#libs/training';

import { STORAGE } from '../core/tokens';

/** Models kept loaded for predict; the least recently used is dropped. */
const CAPACITY = 8;

/** A bounded LRU cache of loaded model versions, by version id. */
@Injectable()
export class PredictorCache implements OnModuleDestroy {
  private readonly entries = new Map<string, Promise<Predictor>>();
  private backend?: Promise<unknown>;

  constructor(@Inject(STORAGE) private readonly storage: ObjectStorage) {}

  async get(versionId: string, artifactKey: string): Promise<Predictor> {
    const cached = this.entries.get(versionId);
    if (cached) {
      // Map order is insertion order: re-inserting marks it most recent.
      this.entries.delete(versionId);
      this.entries.set(versionId, cached);

      return cached;
    }
    const loading = this.load(artifactKey);
    this.entries.set(versionId, loading);
    loading.catch(() => this.entries.delete(versionId));
    while (this.entries.size > CAPACITY) {
      const [oldest, predictor] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      void predictor.then((p) => p.dispose()).catch(() => undefined);
    }

    return loading;
  }

  onModuleDestroy() {
    for (const predictor of this.entries.values()) {
      void predictor.then((p) => p.dispose()).catch(() => undefined);
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
