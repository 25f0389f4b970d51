export * from './sweep';
export * from './upload-tracker';
