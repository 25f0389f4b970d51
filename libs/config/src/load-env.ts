import { envSchema, type Env } from './env.schema';

/** Thrown when the environment is wrong; the message lists every problem. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

/** Parses and validates the environment; throws ConfigError naming each bad variable. */
export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const present = Object.fromEntries(
    Object.entries(source).filter(([, value]) => value !== ''),
  );
  const result = envSchema.safeParse(present);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const name = issue.path.join('.');
        const value = present[name];
        const shown = /KEY|SECRET|TOKEN|URL/.test(name)
          ? '(hidden)'
          : `"${value}"`;

        return `${name}=${value === undefined ? '(unset)' : shown}: ${issue.message}`;
      }),
    );
  }
  const env = result.data;
  const s3Keys = [env.S3_ACCESS_KEY, env.S3_SECRET_KEY].filter(Boolean).length;
  if (env.S3_ENDPOINT && s3Keys !== 2) {
    throw new ConfigError([
      'S3_ACCESS_KEY and S3_SECRET_KEY: both are required when S3_ENDPOINT is set',
    ]);
  }

  return env;
}

/** Requires a variable that the platform launcher normally fills in. */
export function requireEnv<K extends keyof Env>(
  env: Env,
  name: K,
): NonNullable<Env[K]> {
  const value = env[name];
  if (value === undefined || value === null) {
    throw new ConfigError([`${String(name)}: is required for this process`]);
  }

  return value as NonNullable<Env[K]>;
}
