import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startEmbeddedS3 } from '#libs/embedded';

import { ObjectStorage } from './object-storage';

/**
 * For tests: a real S3 server on a temporary folder and the adapter over
 * one bucket of it. `stop` removes both.
 */
export async function startScratchStorage(bucket = 'unit-tests') {
  const dir = mkdtempSync(path.join(tmpdir(), 'chorus-s3-'));
  const s3 = await startEmbeddedS3({ directory: dir, port: 0 });
  const storage = new ObjectStorage({
    endpoint: s3.endpoint,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: 'us-east-1',
    bucket,
    presignMaxSeconds: 600,
  });
  await storage.ensureBucket();

  return {
    storage,
    /** The server, for tests that look inside it or need its keys. */
    s3,
    stop: async () => {
      await s3.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
