/** Injection tokens for the adapters the core module provides. */
export const ENV = Symbol('ENV');
export const PRISMA = Symbol('PRISMA');
export const STORAGE = Symbol('STORAGE');
export const QUEUE = Symbol('QUEUE');
