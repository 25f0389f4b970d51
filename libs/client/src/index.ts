export * from './columns';
export * from './participant';
