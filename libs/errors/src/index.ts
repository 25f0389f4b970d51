export * from './chorus-error';
export * from './error-code';
export * from './http-status';
