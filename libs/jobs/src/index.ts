export * from './job-events';
export * from './training-config';
export * from './submit';
