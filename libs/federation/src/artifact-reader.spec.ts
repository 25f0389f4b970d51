import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';

import type { ObjectStorage } from '#libs/storage';
import type { Artifact } from '#libs/training';

import { openArtifactWeights, weightSpecsOfArtifact } from './artifact-reader';
import { exportGlobalWeights } from './export';
import {
  deflatedZip,
  putArtifact,
  specsOf,
  startStorage,
  tensorsOf,
  tinyArtifact,
} from './testing/fixtures';
import { readWeightsStream } from './weights-file';

describe('artifact readers', () => {
  let storage: ObjectStorage;
  let stop: () => Promise<void>;
  let artifact: Artifact;

  beforeAll(async () => {
    ({ storage, stop } = await startStorage());
    // Wide enough that weights.bin lies beyond the cached head and tail.
    artifact = await tinyArtifact({ widths: [128, 128] });
    await putArtifact(storage, 'stored.zip', artifact);
    const legacy = await deflatedZip(artifact);
    await storage.put('legacy.zip', legacy, legacy.length);
  });

  afterAll(async () => {
    await stop();
  });

  async function readBack(key: string) {
    const reader = await openArtifactWeights(storage, key);
    const tensors = new Map<string, Float32Array>();
    for await (const tensor of reader) {
      tensors.set(tensor.name, tensor.values);
    }

    return { reader, tensors };
  }

  it('reads the weights of a zip with weights.bin stored', async () => {
    const { reader, tensors } = await readBack('stored.zip');

    expect(reader.deflated).toBe(false);
    expect(reader.manifest.tasks.map((t) => t.name)).toEqual(['buys']);
    expect(tensors).toEqual(tensorsOf(artifact));
  });

  it('still reads an older zip whose weights.bin is deflated', async () => {
    const { reader, tensors } = await readBack('legacy.zip');

    expect(reader.deflated).toBe(true);
    expect(tensors).toEqual(tensorsOf(artifact));
  });

  it('reads a zip small enough to come whole with the first bytes', async () => {
    const small = await tinyArtifact();
    await putArtifact(storage, 'small.zip', small);

    const { tensors } = await readBack('small.zip');

    expect(tensors).toEqual(tensorsOf(small));
  });

  it.each([
    ['reads on through', 200 * 1024, 'near.zip'],
    ['makes a GET of its own for', 2 * 1024 * 1024, 'far.zip'],
  ])('%s weights.bin after %i bytes of another entry', async (_, skip, key) => {
    // Up to 1 MiB past the first bytes read is read through and dropped.
    const zip = new yazl.ZipFile();
    zip.addBuffer(randomBytes(skip), 'notes.bin', {
      compress: false,
    });
    zip.addBuffer(Buffer.from(artifact.modelJson), 'model.json');
    zip.addBuffer(Buffer.from(artifact.weights), 'weights.bin', {
      compress: false,
    });
    zip.addBuffer(
      Buffer.from(JSON.stringify(artifact.manifest)),
      'manifest.json',
    );
    zip.end();
    const parts: Buffer[] = [];
    for await (const part of zip.outputStream) {
      parts.push(part as Buffer);
    }
    const bytes = Buffer.concat(parts);
    await storage.put(key, bytes, bytes.length);

    const { tensors } = await readBack(key);

    expect(tensors).toEqual(tensorsOf(artifact));
  });

  it('lists the weight specs in model.json order', async () => {
    expect(await weightSpecsOfArtifact(storage, 'stored.zip')).toEqual(
      specsOf(artifact),
    );
  });

  it('exports the global weights as a weights file', async () => {
    const tensors = new Map<string, Float32Array>();
    for await (const tensor of readWeightsStream(
      exportGlobalWeights(storage, 'legacy.zip'),
      specsOf(artifact),
    )) {
      tensors.set(tensor.name, tensor.values);
    }

    expect(tensors).toEqual(tensorsOf(artifact));
  });

  it('says which artifact does not exist', async () => {
    await expect(
      openArtifactWeights(storage, 'nope.zip'),
    ).rejects.toMatchObject({ code: 'NOT_FOUND', details: { id: 'nope.zip' } });
  });
});
