export * from './embedded-postgres';
export * from './embedded-s3';
