import http from 'node:http';
import https from 'node:https';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { Client } from 'minio';

import { ChorusError } from '#libs/errors';

/** Options for {@link ObjectStorage}. */
export interface ObjectStorageOptions {
  /** http(s):// URL of MinIO or any S3 API. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  /** Region to sign for; set so presigning makes no network look-up. */
  region: string;
  /** The bucket every Chorus object lives in. */
  bucket: string;
  /** Longest expiry a presigned URL may have, in seconds. */
  presignMaxSeconds: number;
}

export interface ObjectInfo {
  size: number;
  etag: string;
  contentType?: string;
}

export interface PartEtag {
  part: number;
  etag: string;
}

/** The minio client's default part size: its largest single signed PUT. */
const SIGNED_PUT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The one adapter over object storage. Keys are relative to the Chorus
 * bucket; nothing else in Chorus talks to the minio client.
 */
export class ObjectStorage {
  readonly bucket: string;
  private readonly client: Client;
  private readonly presignMaxSeconds: number;

  constructor(options: ObjectStorageOptions) {
    const url = new URL(options.endpoint);
    this.client = new Client({
      endPoint: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      useSSL: url.protocol === 'https:',
      accessKey: options.accessKey,
      secretKey: options.secretKey,
      region: options.region,
      pathStyle: true,
    });
    this.bucket = options.bucket;
    this.presignMaxSeconds = options.presignMaxSeconds;
  }

  /** Creates the bucket when it does not exist yet. */
  async ensureBucket(): Promise<void> {
    if (!(await this.client.bucketExists(this.bucket))) {
      await this.client.makeBucket(this.bucket);
    }
  }

  /** Resolves when the storage answers; used by the readiness check. */
  async ping(): Promise<void> {
    await this.client.bucketExists(this.bucket);
  }

  /**
   * Stores bytes held in memory in one request. Up to the minio client's
   * part size its signed PUT (with the body's hashes); past it the client
   * would start a multipart upload by listing the bucket's unfinished ones,
   * which not every S3 server implements (the embedded one answers 501), so
   * larger bodies go as one presigned PUT ({@link putStream}).
   */
  async put(
    key: string,
    body: Buffer,
    size: number,
    contentType = 'application/octet-stream',
  ): Promise<void> {
    if (size > SIGNED_PUT_MAX_BYTES) {
      return this.putStream(key, Readable.from([body]), size, contentType);
    }
    await this.client.putObject(this.bucket, key, body, size, {
      'Content-Type': contentType,
    });
  }

  /**
   * Streams an object of known size in one PUT without holding it in
   * memory. The minio client signs the sha256 of a body sent over http, and
   * so reads a stream whole first; a presigned URL (unsigned payload) lets
   * the bytes go out as they come. `body` must give exactly `size` bytes.
   */
  async putStream(
    key: string,
    body: Readable,
    size: number,
    contentType = 'application/octet-stream',
  ): Promise<void> {
    const url = new URL(
      await this.presignPut(
        key,
        Math.min(PUT_URL_SECONDS, this.presignMaxSeconds),
      ),
    );
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'PUT',
      headers: { 'Content-Length': size, 'Content-Type': contentType },
    });
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', reject);
    });
    const sent = pipeline(body, exactly(size, key), request);
    sent.catch(() => undefined);
    // The body's own error when it failed first, else the server's answer
    // (which may come early, refusing the request).
    const answer = await Promise.race([response, sent.then(() => response)]);
    const text = (await collectText(answer)).trim();
    if (answer.statusCode !== 200) {
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? 'no error code';
      body.destroy();
      throw new Error(
        `The storage refused the object ${key}: HTTP ${answer.statusCode} (${code}).`,
      );
    }
    await sent;
  }

  /** Streams an object, or the byte range [start, end] of it. */
  async get(
    key: string,
    range?: { start: number; end: number },
  ): Promise<Readable> {
    if (!range) {
      return this.client.getObject(this.bucket, key);
    }

    return this.client.getPartialObject(
      this.bucket,
      key,
      range.start,
      range.end - range.start + 1,
    );
  }

  /**
   * Streams a whole object together with its size (from the response, so
   * without a stat first), or undefined when it does not exist.
   */
  async getWithSize(
    key: string,
  ): Promise<{ body: Readable; size: number } | undefined> {
    let body: Readable;
    try {
      body = await this.client.getObject(this.bucket, key);
    } catch (error) {
      if (isNotFound(error)) {
        return undefined;
      }
      throw error;
    }
    const length = (body as http.IncomingMessage).headers?.['content-length'];
    const size = length === undefined ? NaN : Number(length);
    if (Number.isSafeInteger(size)) {
      return { body, size };
    }
    const info = await this.stat(key);
    if (!info) {
      body.destroy();

      return undefined;
    }

    return { body, size: info.size };
  }

  /** Size and etag of an object, or undefined when it does not exist. */
  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const info = await this.client.statObject(this.bucket, key);

      return {
        size: info.size,
        etag: info.etag,
        contentType: info.metaData?.['content-type'] as string | undefined,
      };
    } catch (error) {
      if (isNotFound(error)) {
        return undefined;
      }
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    await this.client.removeObject(this.bucket, key);
  }

  /** Removes every object whose key starts with the prefix. */
  async removePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    await this.removeKeys(keys);

    return keys.length;
  }

  /** Removes these objects, in batches of multi-object deletes. */
  async removeKeys(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 500) {
      await this.client.removeObjects(this.bucket, keys.slice(i, i + 500));
    }
  }

  /** Keys under a prefix, in key order. */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const item of this.client.listObjectsV2(
      this.bucket,
      prefix,
      true,
    )) {
      if (item.name) {
        keys.push(item.name);
      }
    }

    return keys;
  }

  async presignGet(key: string, expirySeconds: number): Promise<string> {
    return this.client.presignedGetObject(
      this.bucket,
      key,
      this.expiry(expirySeconds),
    );
  }

  async presignPut(key: string, expirySeconds: number): Promise<string> {
    return this.client.presignedPutObject(
      this.bucket,
      key,
      this.expiry(expirySeconds),
    );
  }

  /** Starts a multipart upload; the caller records the id before any part. */
  async createMultipart(key: string, contentType?: string): Promise<string> {
    return this.client.initiateNewMultipartUpload(this.bucket, key, {
      'Content-Type': contentType ?? 'application/octet-stream',
    });
  }

  async uploadPart(
    key: string,
    uploadId: string,
    part: number,
    body: Buffer,
  ): Promise<PartEtag> {
    const result = await this.client.uploadPart(
      {
        bucketName: this.bucket,
        objectName: key,
        uploadID: uploadId,
        partNumber: part,
        headers: { 'Content-Length': body.length },
      },
      body,
    );

    return { part, etag: result.etag };
  }

  /** A URL a client can PUT one part to directly. */
  async presignPart(
    key: string,
    uploadId: string,
    part: number,
    expirySeconds: number,
  ): Promise<string> {
    return this.client.presignedUrl(
      'PUT',
      this.bucket,
      key,
      this.expiry(expirySeconds),
      { partNumber: String(part), uploadId },
    );
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: PartEtag[],
  ): Promise<void> {
    await this.client.completeMultipartUpload(
      this.bucket,
      key,
      uploadId,
      parts,
    );
  }

  /** Aborts a multipart upload; one that is already gone counts as done. */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.abortMultipartUpload(this.bucket, key, uploadId);
    } catch (error) {
      if (!isNotFound(error)) {
        throw error;
      }
    }
  }

  private expiry(requested: number): number {
    if (
      !Number.isInteger(requested) ||
      requested < 1 ||
      requested > this.presignMaxSeconds
    ) {
      throw ChorusError.badInput(
        'expiresInSeconds',
        `expiresInSeconds must be a whole number from 1 to ${this.presignMaxSeconds}.`,
      );
    }

    return requested;
  }
}

/** Expiry of the URL putStream sends its body to; checked on arrival. */
const PUT_URL_SECONDS = 300;

/**
 * Passes a body through, failing it when it gives more or fewer bytes than
 * its Content-Length promised (the server would otherwise wait for the rest).
 */
function exactly(size: number, key: string): Transform {
  let seen = 0;
  const mismatch = () =>
    new Error(
      `The body of ${key} gave ${seen} bytes; its size was given as ${size}.`,
    );

  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      done(seen > size ? mismatch() : null, chunk);
    },
    flush(done) {
      done(seen === size ? null : mismatch());
    },
  });
}

async function collectText(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of stream) {
    parts.push(part as Buffer);
  }

  return Buffer.concat(parts).toString('utf8');
}

function isNotFound(error: unknown): boolean {
  const code = (error as { code?: string }).code;

  return code === 'NotFound' || code === 'NoSuchKey' || code === 'NoSuchUpload';
}
