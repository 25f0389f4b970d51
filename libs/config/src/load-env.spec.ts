import { describe, expect, it } from 'vitest';

import { ConfigError, loadEnv } from './load-env';

describe('loadEnv', () => {
  it('fills in defaults for an empty environment', () => {
    const env = loadEnv({});

    expect(env.PORT).toBe(3000);
    expect(env.CHORUS_DATA_DIR).toBe('./.chorus');
    expect(env.UPLOAD_MAX_BYTES).toBe(10 * 1024 ** 3);
  });

  it('names the variable and what is allowed for a wrong value', () => {
    expect(() => loadEnv({ PORT: 'eighty' })).toThrow(/PORT="eighty"/);
    expect(() => loadEnv({ LOG_LEVEL: 'loud' })).toThrow(
      /LOG_LEVEL="loud": must be fatal, error/,
    );
  });

  it('keeps a training segment inside the queue expiry', () => {
    expect(loadEnv({}).TRAIN_SEGMENT_SECONDS).toBe(6 * 3600);
    expect(() => loadEnv({ TRAIN_SEGMENT_SECONDS: '86400' })).toThrow(
      /TRAIN_SEGMENT_SECONDS="86400": must be at most 72000/,
    );
    expect(
      loadEnv({ WORKER_TAKES_CPU_JOBS: 'false' }).WORKER_TAKES_CPU_JOBS,
    ).toBe(false);
  });

  it('hides the value of secrets in the message', () => {
    try {
      loadEnv({ DATABASE_URL: 'mysql://root:secret@db/x' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain('DATABASE_URL=(hidden)');
      expect((error as Error).message).not.toContain('secret');
    }
  });

  it('requires both S3 keys with an S3 endpoint', () => {
    expect(() =>
      loadEnv({ S3_ENDPOINT: 'http://127.0.0.1:9000', S3_ACCESS_KEY: 'a' }),
    ).toThrow(/S3_SECRET_KEY/);
  });
});
