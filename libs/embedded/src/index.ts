export * from './embedded-postgres';
export * from './embedded-s3';
export * from './platform-process';
