export * from './from-env';
export * from './object-storage';
export * from './stream-upload';
