import { Env, requireEnv } from '#libs/config';

import { ObjectStorage } from './object-storage';

/** The storage adapter for the validated environment of a process. */
export function storageFromEnv(env: Env): ObjectStorage {
  return new ObjectStorage({
    endpoint: requireEnv(env, 'S3_ENDPOINT'),
    accessKey: requireEnv(env, 'S3_ACCESS_KEY'),
    secretKey: requireEnv(env, 'S3_SECRET_KEY'),
    region: env.S3_REGION,
    bucket: env.S3_BUCKET,
    presignMaxSeconds: env.PRESIGN_MAX_SECONDS,
  });
}
