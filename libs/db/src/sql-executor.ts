import type { PrismaTransaction } from './prisma';

/** Lets another adapter (the queue) run SQL inside a Prisma transaction. */
export function sqlExecutor(tx: PrismaTransaction) {
  return {
    async executeSql(text: string, values: unknown[] = []) {
      const rows = await tx.$queryRawUnsafe<unknown[]>(text, ...values);

      return { rows };
    },
  };
}
