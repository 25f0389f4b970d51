export * from './job-events';
