import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { EmbeddedS3Handle } from '#libs/embedded';

import { ObjectStorage } from './object-storage';
import { startScratchStorage } from './testing';

describe('ObjectStorage.put and putStream against a real S3 server', () => {
  let s3: EmbeddedS3Handle;
  let storage: ObjectStorage;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ s3, storage, stop } = await startScratchStorage());
  });

  afterAll(() => stop());

  const chunks = (bytes: Buffer, size: number) =>
    Readable.from(
      Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) =>
        bytes.subarray(i * size, (i + 1) * size),
      ),
    );
  const sha256 = (bytes: Buffer) =>
    createHash('sha256').update(bytes).digest('hex');

  it('stores a streamed body of known size with its content type', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 7);

    await storage.putStream(
      'put/stream.bin',
      chunks(bytes, 64 * 1024),
      bytes.length,
      'application/zip',
    );

    const stored: Buffer[] = [];
    for await (const part of await storage.get('put/stream.bin')) {
      stored.push(part as Buffer);
    }
    expect(sha256(Buffer.concat(stored))).toBe(sha256(bytes));
    expect(await storage.stat('put/stream.bin')).toMatchObject({
      size: bytes.length,
      contentType: 'application/zip',
    });
  });

  it('stores bytes in memory larger than the client part size in one piece', async () => {
    // 64 MiB + 1: the minio client would go multipart, which the embedded
    // server refuses (it cannot list unfinished uploads).
    const bytes = randomBytes(64 * 1024 * 1024 + 1);

    await storage.put('put/large.bin', bytes, bytes.length, 'application/zip');

    const hash = createHash('sha256');
    for await (const part of await storage.get('put/large.bin')) {
      hash.update(part as Buffer);
    }
    expect(hash.digest('hex')).toBe(sha256(bytes));
    expect(await storage.stat('put/large.bin')).toMatchObject({
      size: bytes.length,
      contentType: 'application/zip',
    });
  });

  it('fails, storing nothing, when the body is shorter than its size', async () => {
    const bytes = randomBytes(1000);

    await expect(
      storage.putStream('put/short.bin', chunks(bytes, 100), 1001),
    ).rejects.toThrow(/gave 1000 bytes; its size was given as 1001/);
    expect(await storage.stat('put/short.bin')).toBeUndefined();
  });

  it('fails with the body stream’s own error', async () => {
    const body = Readable.from(
      (async function* () {
        yield Buffer.alloc(100);
        throw new Error('source broke');
      })(),
    );

    await expect(
      storage.putStream('put/broken.bin', body, 200),
    ).rejects.toThrow('source broke');
    expect(await storage.stat('put/broken.bin')).toBeUndefined();
  });

  it('reports the server’s refusal with its status and error code', async () => {
    const elsewhere = new ObjectStorage({
      endpoint: s3.endpoint,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
      region: 'us-east-1',
      bucket: 'no-such-bucket',
      presignMaxSeconds: 600,
    });

    await expect(
      elsewhere.putStream('put/x.bin', chunks(randomBytes(10), 10), 10),
    ).rejects.toThrow(
      'The storage refused the object put/x.bin: HTTP 404 (NoSuchBucket).',
    );
  });
});
