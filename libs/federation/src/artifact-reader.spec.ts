import { randomBytes } from 'node:crypto';

import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  it,
  vi,
} from 'vitest';
import yazl from 'yazl';

import type { ObjectStorage } from '#libs/storage';
import type { Artifact, ArtifactManifest } from '#libs/training';

import {
  openArtifactWeights,
  readArtifactMetadata,
  weightSpecsOfArtifact,
} from './artifact-reader';
import { exportGlobalWeights } from './export';
import {
  deflatedZip,
  putArtifact,
  specsOf,
  startStorage,
  tensorsOf,
  tinyArtifact,
} from './testing/fixtures';
import { writeArtifact } from './storage-io';
import { storedZip } from './stored-zip';
import { readWeightsStream } from './weights-file';

describe('artifact readers', () => {
  let storage: ObjectStorage;
  let stop: () => Promise<void>;
  let artifact: Artifact;

  beforeAll(async () => {
    ({ storage, stop } = await startStorage());
    // Wide enough that weights.bin lies beyond the cached head and tail.
    artifact = await tinyArtifact({ widths: [256, 256] });
    await putArtifact(storage, 'stored.zip', artifact);
    const legacy = await deflatedZip(artifact);
    await storage.put('legacy.zip', legacy, legacy.length);
  });

  afterAll(async () => {
    await stop();
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Counts the requests the storage is asked for from now on. */
  function countRequests(): () => number {
    const spies = (['get', 'getWithSize', 'stat'] as const).map((method) =>
      vi.spyOn(storage, method),
    );

    return () => spies.reduce((n, spy) => n + spy.mock.calls.length, 0);
  }

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

  it('opens an artifact as zipArtifact writes it in one request', async () => {
    const requests = countRequests();

    const { tensors } = await readBack('stored.zip');
    const metadata = await readArtifactMetadata(storage, 'stored.zip');

    expect(tensors).toEqual(tensorsOf(artifact));
    expect(metadata.manifest).toEqual(artifact.manifest);
    expect(requests()).toBe(2);
  });

  it('opens an artifact as writeArtifact writes it in one request', async () => {
    const meta = await readArtifactMetadata(storage, 'stored.zip');
    await writeArtifact(storage, {
      key: 'written.zip',
      ...meta,
      values: (async function* () {
        yield* tensorsOf(artifact).values();
      })(),
    });
    const requests = countRequests();

    const { reader, tensors } = await readBack('written.zip');

    expect(requests()).toBe(1);
    expect(reader.manifest).toEqual(artifact.manifest);
    expect(tensors).toEqual(tensorsOf(artifact));
  });

  it('reads on for metadata longer than the first bytes', async () => {
    const manifest = {
      ...artifact.manifest,
      notes: 'n'.repeat(300 * 1024),
    } as ArtifactManifest;
    await putArtifact(storage, 'long.zip', { ...artifact, manifest });
    const requests = countRequests();

    const { reader, tensors } = await readBack('long.zip');

    expect(requests()).toBe(1);
    expect(reader.manifest).toEqual(manifest);
    expect(tensors).toEqual(tensorsOf(artifact));
  });

  it('refuses weights.bin that runs past what model.json lists', async () => {
    const extra = Buffer.from(artifact.weights.slice(0, 8));
    const zip = storedZip([
      { name: 'model.json', data: Buffer.from(artifact.modelJson) },
      {
        name: 'manifest.json',
        data: Buffer.from(JSON.stringify(artifact.manifest)),
      },
      {
        name: 'weights.bin',
        data: (async function* () {
          yield Buffer.from(artifact.weights);
          yield extra;
        })(),
        size: artifact.weights.length + extra.length,
      },
    ]);
    await storage.putStream('long-weights.zip', zip.stream, zip.size);

    await expect(readBack('long-weights.zip')).rejects.toThrow(
      /weights\.bin does not end after the \d+ bytes its model\.json lists/,
    );
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
    // Another layout, read through its central directory (manifest.json
    // comes last). Up to 1 MiB past the first bytes read is read through
    // and dropped to reach weights.bin.
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
