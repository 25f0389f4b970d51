import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the proxy refused, as the test can later inspect it. */
export interface RefusedRequest {
  method: string;
  path: string;
}

/**
 * An HTTP proxy in front of the S3 server that forwards every request
 * unchanged (the Host header included, so signatures still match) except
 * those a rule refuses: they get 503 SlowDown, the answer S3 gives when it
 * cannot take a request.
 */
export class S3FaultProxy {
  readonly refused: RefusedRequest[] = [];
  private rule?: (method: string, path: string) => boolean;

  private readonly server: http.Server;
  private endpointUrl = '';

  private constructor(target: URL) {
    this.server = http.createServer((request, response) =>
      this.handle(target, request, response),
    );
  }

  static async start(upstream: string): Promise<S3FaultProxy> {
    const proxy = new S3FaultProxy(new URL(upstream));
    await new Promise<void>((resolve) =>
      proxy.server.listen(0, '127.0.0.1', resolve),
    );
    const { port } = proxy.server.address() as AddressInfo;
    proxy.endpointUrl = `http://127.0.0.1:${port}`;

    return proxy;
  }

  /** Where clients send requests instead of the S3 server. */
  get endpoint(): string {
    return this.endpointUrl;
  }

  /** Refuses every request for which `matches` is true from now on. */
  fail(matches: (method: string, path: string) => boolean): void {
    this.rule = matches;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(
    target: URL,
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ) {
    const method = request.method ?? 'GET';
    const path = decodeURIComponent(request.url ?? '/');
    if (this.rule?.(method, path)) {
      this.refused.push({ method, path });
      // Read the body first, as a server that is merely overloaded would.
      request.resume();
      request.on('end', () => {
        response.writeHead(503, { 'Content-Type': 'application/xml' });
        response.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>' +
            '<Message>Storage is unavailable (test fault).</Message></Error>',
        );
      });

      return;
    }
    const forward = http.request(
      {
        host: target.hostname,
        port: target.port,
        method,
        path: request.url,
        headers: request.headers,
      },
      (upstream) => {
        response.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(response);
      },
    );
    forward.on('error', () => response.destroy());
    request.pipe(forward);
  }
}
