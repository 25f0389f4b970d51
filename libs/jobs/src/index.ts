export * from './job-events';
export * from './training-config';
export * from './submit';
export * from './fine-tune-config';
export * from './federated-config';
export * from './federated-updates';
