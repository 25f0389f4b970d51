import { Readable } from 'node:stream';

import yazl from 'yazl';

import { ObjectStorage } from '#libs/storage';
import {
  exportArtifact,
  selectBackend,
  train,
  zipArtifact,
  type Artifact,
  type FeatureOptions,
  type MlpBackboneOptions,
  type TaskOptions,
} from '#libs/training';

import { startScratchStorage } from '../../../storage/src/testing';
import { tabularDataset } from '../../../training/src/testing/synthetic';
import type { ModelJson } from '../artifact-reader';
import type { NamedWeights, WeightSpec } from '../tensors';
import { readWeightsStream } from '../weights-file';

/** A real S3 server on a temporary folder, and the adapter over it. */
export const startStorage = () => startScratchStorage('federation-tests');

export interface TinyModelOptions {
  features?: (string | FeatureOptions)[];
  widths?: number[];
  /** batchNorm and residual of the MLP backbone. */
  backbone?: Pick<MlpBackboneOptions, 'batchNorm' | 'residual'>;
  tasks?: TaskOptions[];
  seed?: number;
}

export const BUYS: TaskOptions = {
  name: 'buys',
  kind: 'binary',
  target: 'buys',
};
export const PRICE: TaskOptions = {
  name: 'price',
  kind: 'regression',
  target: 'price',
};
export const SEGMENT: TaskOptions = {
  name: 'segment',
  kind: 'multiclass',
  target: 'segment',
};

/** A small model trained for one epoch on the synthetic tabular data. */
export async function tinyArtifact(
  options: TinyModelOptions = {},
): Promise<Artifact> {
  await selectBackend({ prefer: ['wasm', 'cpu'] });
  const data = tabularDataset(128, options.seed ?? 1);
  const result = await train({
    spec: {
      features: options.features ?? ['x1', 'x2', 'x3'],
      backbone: {
        kind: 'mlp',
        widths: options.widths ?? [4],
        ...options.backbone,
      },
      tasks: options.tasks ?? [BUYS],
    },
    data: { schema: data.schema, train: data.batches },
    epochs: 1,
    seed: options.seed ?? 1,
    recordSteps: false,
  });
  try {
    return await exportArtifact(result.model);
  } finally {
    result.model.dispose();
  }
}

export function specsOf(artifact: Artifact): WeightSpec[] {
  const json = JSON.parse(artifact.modelJson) as ModelJson;

  return json.weightsManifest.flatMap((group) => group.weights);
}

/** The artifact's weights by name. */
export function tensorsOf(artifact: Artifact): Map<string, Float32Array> {
  const all = new Float32Array(artifact.weights.slice().buffer);
  const out = new Map<string, Float32Array>();
  let offset = 0;
  for (const spec of specsOf(artifact)) {
    const size = spec.shape.reduce((n, d) => n * d, 1);
    out.set(spec.name, all.slice(offset, offset + size));
    offset += size;
  }

  return out;
}

/** The same artifact with each weight's values given by `fill`. */
export function withWeights(
  artifact: Artifact,
  fill: (spec: WeightSpec, index: number) => Float32Array | number[],
): Artifact {
  const parts = specsOf(artifact).map((spec, i) => {
    const values = Float32Array.from(fill(spec, i));
    const size = spec.shape.reduce((n, d) => n * d, 1);
    if (values.length !== size) {
      throw new Error(
        `${spec.name} needs ${size} values, got ${values.length}`,
      );
    }

    return values;
  });
  const weights = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    weights.set(new Uint8Array(part.buffer), offset);
    offset += part.byteLength;
  }

  return { ...artifact, weights };
}

/** `value(i)` for each index of a weight of this spec. */
export function filled(spec: WeightSpec, value: (i: number) => number) {
  const size = spec.shape.reduce((n, d) => n * d, 1);

  return Array.from({ length: size }, (_, i) => value(i));
}

export async function putArtifact(
  storage: ObjectStorage,
  key: string,
  artifact: Artifact,
): Promise<void> {
  const bytes = await zipArtifact(artifact);
  await storage.put(key, bytes, bytes.length, 'application/zip');
}

/** An artifact zip as older versions made it: weights.bin deflated. */
export async function deflatedZip(artifact: Artifact): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  zip.addBuffer(Buffer.from(artifact.modelJson), 'model.json');
  zip.addBuffer(Buffer.from(artifact.weights), 'weights.bin', {
    compress: true,
  });
  zip.addBuffer(
    Buffer.from(JSON.stringify(artifact.manifest)),
    'manifest.json',
  );
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) {
    chunks.push(chunk as Buffer);
  }

  return Buffer.concat(chunks);
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
  }

  return Buffer.concat(chunks);
}

/** The artifact's weights as NamedWeights, each value passed through `map`. */
export function namedWeights(
  artifact: Artifact,
  map: (value: number, name: string, i: number) => number = (v) => v,
): NamedWeights {
  const tensors = tensorsOf(artifact);

  return new Map(
    specsOf(artifact).map((spec) => [
      spec.name,
      {
        shape: spec.shape,
        values: tensors.get(spec.name)!.map((v, i) => map(v, spec.name, i)),
      },
    ]),
  );
}

/** L2 norm of a - b over all weights. */
export function deltaNorm(a: NamedWeights, b: NamedWeights): number {
  let squares = 0;
  for (const [name, { values }] of a) {
    const other = b.get(name)!.values;
    values.forEach((v, i) => {
      squares += (v - other[i]) ** 2;
    });
  }

  return Math.sqrt(squares);
}

/** Reads a whole weights file of storage into memory. */
export async function readWeightsFile(
  storage: ObjectStorage,
  key: string,
): Promise<NamedWeights> {
  const out: NamedWeights = new Map();
  for await (const t of readWeightsStream(await storage.get(key))) {
    out.set(t.name, { shape: t.shape, values: t.values });
  }

  return out;
}
