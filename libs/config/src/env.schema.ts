import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], {
    error: 'must be one of true, false, 1, 0, yes, no',
  })
  .transform((value) => ['true', '1', 'yes'].includes(value));

const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(0, 'must be between 0 and 65535')
  .max(65535, 'must be between 0 and 65535');

const positiveInt = z.coerce
  .number({ error: 'must be a number' })
  .int('must be a whole number')
  .positive('must be greater than 0');

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { error: `must be a URL starting with ${protocols.join(' or ')}//` },
  );

/**
 * Every environment variable Chorus reads, with its default. A wrong value
 * stops the process at start with a message naming the variable.
 */
export const envSchema = z.object({
  NODE_ENV: z
    .enum(['development', 'production', 'test'], {
      error: 'must be development, production or test',
    })
    .default('development'),
  PORT: port.default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'must be fatal, error, warn, info, debug, trace or silent',
    })
    .default('info'),
  CHORUS_DATA_DIR: z.string().min(1).default('./.chorus'),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  S3_ENDPOINT: url(['http:', 'https:']).optional(),
  S3_ACCESS_KEY: z.string().min(1).optional(),
  S3_SECRET_KEY: z.string().min(1).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_BUCKET: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'must be 3 to 63 lower-case letters, digits, dots or hyphens',
    )
    .default('chorus'),
  CHORUS_ADMIN_KEY: z
    .string()
    .regex(
      /^chorus_[A-Za-z0-9_-]{32,}$/,
      'must look like chorus_ followed by at least 32 letters, digits, _ or -',
    )
    .optional(),
  /** Bearer token /metrics asks for; without one, /metrics refuses all. */
  METRICS_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional(),
  CORS_ORIGINS: z.string().default(''),
  GRAPHQL_INTROSPECTION: bool.optional(),
  GRAPHQL_MAX_DEPTH: positiveInt.default(12),
  GRAPHQL_MAX_COST: positiveInt.default(2000),
  RATE_LIMIT_REQUESTS: positiveInt.default(600),
  RATE_LIMIT_WINDOW_SECONDS: positiveInt.default(60),
  UPLOAD_MAX_BYTES: positiveInt.default(10 * 1024 ** 3),
  /** Largest imported model (model.json plus weights, or an artifact zip). */
  IMPORT_MAX_BYTES: positiveInt.default(256 * 1024 ** 2),
  UPLOAD_PART_BYTES: positiveInt
    .min(5 * 1024 ** 2, 'must be at least 5242880 (S3 minimum part size)')
    .default(16 * 1024 ** 2),
  UPLOAD_STALE_SECONDS: positiveInt.default(300),
  /** How long a job that failed for good keeps its checkpoints for a retry. */
  FAILED_CHECKPOINT_RETENTION_SECONDS: positiveInt.default(7 * 24 * 3600),
  SWEEP_INTERVAL_SECONDS: positiveInt.default(60),
  PRESIGN_MAX_SECONDS: positiveInt
    .max(604800, 'must be at most 604800 (7 days)')
    .default(3600),
  WORKER_CONCURRENCY: positiveInt.default(1),
  WORKER_CAPABILITY: z
    .enum(['cpu', 'gpu'], { error: 'must be cpu or gpu' })
    .optional(),
  // A GPU worker takes CPU jobs too unless this is false (keeps it for GPU work).
  WORKER_TAKES_CPU_JOBS: bool.default(true),
  // A training stops at the end of the epoch in which this time is up and
  // continues as a new delivery, far inside pg-boss' 24-hour expiry.
  TRAIN_SEGMENT_SECONDS: positiveInt
    .max(72000, 'must be at most 72000 (20 hours, under the queue expiry)')
    .default(21600),
});

export type Env = z.infer<typeof envSchema>;
