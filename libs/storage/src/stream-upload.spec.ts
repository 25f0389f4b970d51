import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { Readable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { EmbeddedS3Handle } from '#libs/embedded';

import { ObjectStorage } from './object-storage';
import { startScratchStorage } from './testing';
import { streamUpload } from './stream-upload';

const PART = 5 * 1024 * 1024;

describe('streamUpload against a real S3 server', () => {
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

  it('stores a small body in one request and computes its sha256', async () => {
    const bytes = randomBytes(1000);

    const result = await streamUpload({
      storage,
      key: 'small',
      body: chunks(bytes, 100),
      partBytes: PART,
      maxBytes: PART * 10,
    });

    expect(result.uploadId).toBeUndefined();
    expect(result.sha256).toBe(
      createHash('sha256').update(bytes).digest('hex'),
    );
    expect((await storage.stat('small'))?.size).toBe(1000);
  });

  it('stores a larger body as parts that reassemble byte for byte', async () => {
    const bytes = randomBytes(PART * 2 + 12345);
    const started: string[] = [];
    const progress: number[] = [];

    const result = await streamUpload({
      storage,
      key: 'large',
      body: chunks(bytes, 64 * 1024),
      partBytes: PART,
      maxBytes: PART * 10,
      onMultipartStart: async (id) => {
        started.push(id);
      },
      onProgress: async (total) => {
        progress.push(total);
      },
    });
    const back: Buffer[] = [];
    for await (const chunk of await storage.get('large')) {
      back.push(chunk as Buffer);
    }

    expect(started).toEqual([result.uploadId]);
    expect(progress).toHaveLength(3);
    expect(Buffer.concat(back).equals(bytes)).toBe(true);
  });

  it('aborts the multipart upload when the body is over the limit', async () => {
    const bytes = randomBytes(PART * 3);
    let uploadId = '';

    const failure = streamUpload({
      storage,
      key: 'too-big',
      body: chunks(bytes, 1024 * 1024),
      partBytes: PART,
      maxBytes: PART * 2,
      onMultipartStart: async (id) => {
        uploadId = id;
      },
    });

    await expect(failure).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(uploadId).not.toBe('');
    expect(readdirSync(s3.uploadsDir('unit-tests'))).not.toContain(uploadId);
    expect(await storage.stat('too-big')).toBeUndefined();
  });

  it('refuses a presigned URL that would live longer than allowed', async () => {
    await expect(storage.presignGet('small', 601)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      details: { field: 'expiresInSeconds' },
    });
    const url = await storage.presignGet('small', 60);

    expect((await fetch(url)).status).toBe(200);
  });
});
