import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Client } from 'minio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ObjectStorage } from '#libs/storage';

import { startEmbeddedS3, type EmbeddedS3Handle } from './embedded-s3';

describe('embedded S3 server', () => {
  let directory: string;
  let s3: EmbeddedS3Handle;
  let storage: ObjectStorage;

  beforeAll(async () => {
    directory = mkdtempSync(path.join(tmpdir(), 'chorus-embedded-s3-'));
    s3 = await startEmbeddedS3({ directory, port: 0 });
    storage = new ObjectStorage({
      endpoint: s3.endpoint,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
      region: 'us-east-1',
      bucket: 'embedded-spec',
      presignMaxSeconds: 600,
    });
    await storage.ensureBucket();
  });

  afterAll(async () => {
    await s3.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('keeps no object of a PUT cut off before its last byte', async () => {
    const url = new URL(await storage.presignPut('cut.bin', 60));
    const request = http.request(url, {
      method: 'PUT',
      headers: { 'Content-Length': 1000 },
    });
    request.on('error', () => undefined);
    request.write(Buffer.alloc(400, 7));
    // Long enough for the server to have started storing the body.
    await new Promise((resolve) => setTimeout(resolve, 300));
    request.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect(await storage.stat('cut.bin')).toBeUndefined();
    expect(await storage.list('')).toEqual([]);
  });

  it('stores a whole PUT, replacing what the key held', async () => {
    for (const fill of [1, 2]) {
      const body = Buffer.alloc(1000 + fill, fill);
      await storage.put('whole.bin', body, body.length);
    }

    const stored: Buffer[] = [];
    for await (const part of await storage.get('whole.bin')) {
      stored.push(part as Buffer);
    }

    expect(Buffer.concat(stored)).toEqual(Buffer.alloc(1002, 2));
    expect(await storage.stat('whole.bin')).toMatchObject({ size: 1002 });
  });

  it('deletes many objects of one folder in one request, at the first try', async () => {
    const keys = Array.from(
      { length: 24 },
      (_, i) => `jobs/j/checkpoints/attempt-${i % 2}/epoch-${i}.ckpt`,
    );
    for (const key of keys) {
      await storage.put(key, Buffer.from(key), key.length);
    }
    // Without the client's one silent retry, a 500 would surface.
    const url = new URL(s3.endpoint);
    const client = new Client({
      endPoint: url.hostname,
      port: Number(url.port),
      useSSL: false,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
      region: 'us-east-1',
      pathStyle: true,
      retryOptions: { disableRetry: true },
    });

    await client.removeObjects('embedded-spec', keys);

    expect(await storage.list('jobs/')).toEqual([]);
  });
});
