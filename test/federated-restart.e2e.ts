import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { FederatedParticipant } from '#libs/client';
import { freePort, waitForReady } from '#libs/embedded';

import { gql } from './support/client';
import { threeTargetCsv } from './support/training';

const launcher = path.resolve('dist/apps/platform/src/main.js');

/** `npm start` in a folder of its own: embedded Postgres and S3 there. */
function startPlatform(env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [launcher], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Ready, or the launcher's exit code if it gave up first. */
async function ready(child: ChildProcess, base: string) {
  await Promise.race([
    waitForReady(`${base}/health/ready`, 120_000),
    exited(child).then(() => {
      throw new Error(`The platform exited with ${child.exitCode}`);
    }),
  ]);
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once('exit', () => resolve()));

async function until<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) {
      return value;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

describe('a federated run across a platform restart', () => {
  it('goes on from its stored state after the whole platform is killed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chorus-restart-'));
    // Postgres runs as its own user when we are root: it must reach the folder.
    chmodSync(dir, 0o755);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const adminKey = `chorus_${randomBytes(32).toString('base64url')}`;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      CHORUS_DATA_DIR: dir,
      CHORUS_ADMIN_KEY: adminKey,
      PORT: String(port),
      HOST: '127.0.0.1',
      WORKER_CONCURRENCY: '2',
    };
    let platform = startPlatform(env);
    try {
      await ready(platform, base);
      const project = await gql<{
        createProject: { adminKey: { key: string } };
      }>(
        adminKey,
        `mutation { createProject(input: { name: "restart" }) { adminKey { key } } }`,
        undefined,
        base,
      );
      const key = project.data!.createProject.adminKey.key;
      const upload = await fetch(`${base}/v1/datasets?name=shop`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${key}`,
          'Content-Type': 'text/csv',
        },
        body: threeTargetCsv(200, 5),
      });
      const datasetId = ((await upload.json()) as { id: string }).id;
      await until(async () => {
        const result = await gql<{ dataset: { status: string } }>(
          key,
          `query($id: ID!) { dataset(id: $id) { status } }`,
          { id: datasetId },
          base,
        );

        return result.data?.dataset.status === 'READY' ? true : undefined;
      }, 'the dataset');
      const task = await gql<{ createTask: { id: string } }>(
        key,
        `mutation($d: ID!) { createTask(input: { datasetId: $d, name: ` +
          `"premium", kind: BINARY, targets: ["premium"] }) { id } }`,
        { d: datasetId },
        base,
      );
      const model = await gql<{ createModel: { id: string } }>(
        key,
        `mutation($t: ID!) { createModel(input: { name: "m", taskIds: ` +
          `[$t], features: ["x1", "x2", "colour"], backbone: { kind: "mlp", ` +
          `widths: [8] } }) { id } }`,
        { t: task.data!.createTask.id },
        base,
      );
      const started = await gql<{
        startFederatedRun: {
          run: { id: string };
          credentials: { token: string }[];
        };
      }>(
        key,
        `mutation($m: ID!) { startFederatedRun(modelId: $m,
          participants: [{ external: true, name: "lab" }],
          config: { rounds: 2, roundTimeoutSeconds: 600 }) {
          run { id } credentials { token } } }`,
        { m: model.data!.createModel.id },
        base,
      );
      const { run, credentials } = started.data!.startFederatedRun;
      const client = new FederatedParticipant({
        apiUrl: base,
        runId: run.id,
        token: credentials[0].token,
      });
      await until(
        async () =>
          (await client.currentRound()).roundStatus === 'OPEN'
            ? true
            : undefined,
        'round 1 to open',
      );

      // The whole platform dies while round 1 waits for its update.
      platform.kill('SIGKILL');
      await exited(platform);
      platform = startPlatform(env);
      await ready(platform, base);

      for (const round of [1, 2]) {
        const info = await until(async () => {
          const current = await client.currentRound();

          return current.round === round && current.roundStatus === 'OPEN'
            ? current
            : undefined;
        }, `round ${round} to open`);
        const weights = await client.globalWeights(info.round!);
        await client.submitUpdate(info.round!, weights, 20);
      }
      const finished = await until(async () => {
        const result = await gql<{
          federatedRun: { status: string; rounds: { status: string }[] };
        }>(
          key,
          `query($id: ID!) { federatedRun(id: $id) { status rounds { status } } }`,
          { id: run.id },
          base,
        );
        const status = result.data?.federatedRun.status;

        return status && status !== 'RUNNING'
          ? result.data!.federatedRun
          : undefined;
      }, 'the run to finish');
      expect(finished.status).toBe('SUCCEEDED');
      expect(finished.rounds.map((r) => r.status)).toEqual([
        'COMPLETED',
        'COMPLETED',
      ]);
    } finally {
      platform.kill('SIGTERM');
      await exited(platform);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
