import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root: the folder that holds prisma/ and scripts/. */
export function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'prisma', 'schema.prisma'))) {
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`No prisma/schema.prisma above ${__dirname}`);
    }
    dir = parent;
  }

  return dir;
}

/**
 * Applies pending migrations with `prisma migrate deploy` on Prisma's wasm
 * schema engine (no download). Safe to call from several processes at once:
 * Prisma takes an advisory lock.
 */
export async function applyMigrations(databaseUrl: string): Promise<string> {
  const root = projectRoot();
  const { stdout } = await run(
    process.execPath,
    [path.join(root, 'scripts', 'prisma.cjs'), 'migrate', 'deploy'],
    {
      cwd: root,
      env: { ...process.env, DATABASE_URL: databaseUrl },
      maxBuffer: 16 * 1024 * 1024,
    },
  );

  return stdout;
}
