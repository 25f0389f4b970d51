declare module 's3rver' {
  interface S3rverOptions {
    address?: string;
    port?: number;
    directory: string;
    silent?: boolean;
    allowMismatchedSignatures?: boolean;
  }

  /** The parts of s3rver (a Koa application) that Chorus uses. */
  export default class S3rver {
    constructor(options: S3rverOptions);
    middleware: unknown[];
    store: {
      getResourcePath(
        bucket: string,
        key: string | undefined,
        resource: string,
      ): string;
    };
    run(): Promise<import('node:net').AddressInfo>;
    close(): Promise<void>;
  }
}
