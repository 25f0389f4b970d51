import { ChildProcess, fork } from 'node:child_process';

/** Options for {@link Child}. */
export interface ChildOptions {
  name: string;
  script: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/**
 * A platform process (API or worker) that is restarted when it dies on its
 * own, and stopped with SIGTERM (then SIGKILL after a grace period). It
 * holds an IPC channel, so it also exits if the launcher itself is killed.
 */
export class Child {
  private process?: ChildProcess;
  private stopping = false;
  private restarts: number[] = [];

  constructor(private readonly options: ChildOptions) {}

  start(): void {
    const child = fork(this.options.script, [], {
      env: this.options.env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.process = child;
    child.on('exit', (code, signal) => {
      if (this.stopping) {
        return;
      }
      const now = Date.now();
      this.restarts = this.restarts.filter((at) => now - at < 60_000);
      if (this.restarts.length >= 5) {
        this.options.log(
          `${this.options.name} exited (${signal ?? code}) five times in a ` +
            `minute; not restarting it.`,
        );
        process.kill(process.pid, 'SIGTERM');

        return;
      }
      this.restarts.push(now);
      this.options.log(
        `${this.options.name} exited (${signal ?? code}); restarting it.`,
      );
      setTimeout(() => this.start(), 1000);
    });
  }

  async stop(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => resolve()),
    );
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
