import { PrismaPg } from '@prisma/adapter-pg';

import { Prisma, PrismaClient } from './generated/client';

export { Prisma, PrismaClient } from './generated/client';
export * from './generated/enums';
export type {
  ApiKey,
  Dataset,
  Job,
  Project,
  UploadSession,
} from './generated/client';

/** Options for {@link createPrismaClient}. */
export interface PrismaClientOptions {
  /** postgresql:// URL of the Chorus database. */
  databaseUrl: string;
  /** Connections in this process's pool. */
  poolSize?: number;
}

/** A Prisma client on the pg driver adapter (no native query engine). */
export function createPrismaClient(options: PrismaClientOptions): PrismaClient {
  const adapter = new PrismaPg({
    connectionString: options.databaseUrl,
    max: options.poolSize ?? 10,
  });

  return new PrismaClient({ adapter });
}

/** The client handed to `$transaction(async (tx) => ...)`. */
export type PrismaTransaction = Prisma.TransactionClient;
