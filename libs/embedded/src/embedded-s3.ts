import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Options for {@link startEmbeddedS3}. */
export interface EmbeddedS3Options {
  /** Folder that holds buckets and objects; reused on the next start. */
  directory: string;
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port: number;
}

export interface EmbeddedS3Handle {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  /** Where in-progress multipart uploads of a bucket are kept on disk. */
  uploadsDir(bucket: string): string;
  stop(): Promise<void>;
}

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  status: number;
  body: unknown;
  type: string;
}

/**
 * Starts s3rver, a real S3 HTTP server on a folder. s3rver lacks
 * AbortMultipartUpload; a small middleware supplies it so that interrupted
 * uploads can be swept exactly as on MinIO or AWS. Its PUT writes the
 * object's file in place, so a PUT cut off halfway left a visible, short
 * object; here the body goes to a file of its own that is renamed into
 * place once complete, as an S3 PUT is all or nothing. Its delete prunes
 * emptied folders and failed (500) when a multi-object delete removed two
 * objects of one folder at once, the second finding the folder gone; here
 * a folder another request emptied or filled meanwhile ends the pruning.
 */
export async function startEmbeddedS3(
  options: EmbeddedS3Options,
): Promise<EmbeddedS3Handle> {
  const { default: S3rver } = await import('s3rver');
  const directory = path.resolve(options.directory);
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port,
    directory,
    silent: true,
    allowMismatchedSignatures: false,
  });
  const { store } = server;
  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(
      object.bucket,
      object.key,
      'object',
    );
    await mkdir(path.dirname(objectPath), { recursive: true });
    const partial = `${objectPath}.${randomUUID()}.partial`;
    const md5 = createHash('md5');
    let size = 0;
    try {
      await pipeline(
        Buffer.isBuffer(object.content)
          ? Readable.from([object.content])
          : object.content,
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            md5.update(chunk);
            size += chunk.length;
            done(null, chunk);
          },
        }),
        createWriteStream(partial),
      );
      await rename(partial, objectPath);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    const digest = md5.digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);

    return { size, md5: digest };
  };
  store.deleteObject = async (bucket, key) => {
    const files = ['object', 'object.md5', 'metadata.json'].map((kind) =>
      store.getResourcePath(bucket, key, kind),
    );
    await Promise.all(files.map((file) => unlink(file).catch(ignoreMissing)));
    const bucketPath = store.getBucketPath(bucket);
    const folders = key.split('/').slice(0, -1);
    for (let n = folders.length; n > 0; n--) {
      try {
        // Removes the folder only when it is empty.
        await rmdir(path.join(bucketPath, ...folders.slice(0, n)));
      } catch {
        return;
      }
    }
  };
  const uploadsDir = (bucket: string) =>
    server.store.getResourcePath(bucket, undefined, 'uploads') as string;
  server.middleware.unshift(
    async (ctx: KoaContext, next: () => Promise<void>) => {
      const uploadId = ctx.query.uploadId;
      if (ctx.method !== 'DELETE' || !uploadId) {
        return next();
      }
      const bucket = decodeURIComponent(ctx.path.split('/')[1] ?? '');
      if (!/^[a-f0-9]+$/.test(uploadId)) {
        ctx.status = 404;
        ctx.type = 'application/xml';
        ctx.body = '<Error><Code>NoSuchUpload</Code></Error>';

        return;
      }
      await rm(path.join(uploadsDir(bucket), uploadId), {
        recursive: true,
        force: true,
      });
      ctx.status = 204;
    },
  );
  const address = (await server.run()) as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    uploadsDir,
    stop: () => server.close(),
  };
}

const ignoreMissing = (error: NodeJS.ErrnoException) => {
  if (error.code !== 'ENOENT') {
    throw error;
  }
};
