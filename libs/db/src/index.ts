export * from './migrate';
export * from './prisma';
export * from './sql-executor';
