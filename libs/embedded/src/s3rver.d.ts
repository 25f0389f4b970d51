declare module 's3rver' {
  interface S3rverOptions {
    address?: string;
    port?: number;
    directory: string;
    silent?: boolean;
    allowMismatchedSignatures?: boolean;
  }

  /** An object being stored: its body is the request or a buffer. */
  interface S3rverObject {
    bucket: string;
    key: string;
    metadata: Record<string, string>;
    content: import('node:stream').Readable | Buffer;
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
      putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
      putMetadata(
        bucket: string,
        key: string,
        metadata: Record<string, string>,
        md5: string,
      ): Promise<void>;
      getBucketPath(bucket: string): string;
      deleteObject(bucket: string, key: string): Promise<void>;
    };
    run(): Promise<import('node:net').AddressInfo>;
    close(): Promise<void>;
  }
}
