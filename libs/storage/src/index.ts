export * from './object-storage';
export * from './stream-upload';
