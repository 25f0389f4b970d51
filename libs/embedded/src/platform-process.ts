import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

/** dist/apps, from this file in the sources or in dist. */
function appsDir(): string {
  let dir = __dirname;
  while (!dir.endsWith(path.join('libs', 'embedded', 'src'))) {
    dir = path.dirname(dir);
  }
  const root = path.resolve(dir, '..', '..', '..');

  return path.basename(root) === 'dist'
    ? path.join(root, 'apps')
    : path.join(root, 'dist', 'apps');
}

/**
 * The built API or worker running as its own process, as in production; for
 * tests and benchmarks (run `npm run build` first).
 */
export class PlatformProcess {
  private child?: ChildProcess;
  readonly output: string[] = [];

  constructor(
    readonly app: 'api' | 'worker',
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const child = spawn(
      process.execPath,
      [path.join(appsDir(), this.app, 'src', 'main.js')],
      { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (chunk: Buffer) => {
      this.output.push(chunk.toString());
      if (process.env.E2E_LOG_LEVEL) {
        process.stderr.write(`[${this.app}] ${chunk}`);
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.child = child;
  }

  /**
   * Waits until `url` answers. Fails at once if the process exits first,
   * and either way the error carries the end of the process's output.
   */
  async waitUntilReady(url: string, timeoutMs = 120_000): Promise<void> {
    const child = this.child;
    const gone = () =>
      !child || child.exitCode !== null || child.signalCode !== null;
    try {
      await waitForReady(url, timeoutMs, gone);
    } catch (error) {
      const state = gone()
        ? `exited (${child?.exitCode ?? child?.signalCode})`
        : 'still running';
      throw new Error(
        `${(error as Error).message}; the ${this.app} process is ${state}. ` +
          `Its last output:\n${this.output.join('').slice(-4000)}`,
        { cause: error },
      );
    }
  }

  /** SIGKILL: the process gets no chance to clean up. */
  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => resolve()),
    );
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitForReady(
  url: string,
  timeoutMs = 60_000,
  /** Stop waiting early when this says the server will never come. */
  gaveUp: () => boolean = () => false,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gaveUp()) {
    try {
      if ((await fetch(url)).ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(
    gaveUp()
      ? `${url} will not be ready`
      : `${url} was not ready within ${timeoutMs / 1000} s`,
  );
}
