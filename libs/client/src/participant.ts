import { Readable } from 'node:stream';

import type { ColumnBatch, DatasetSchema } from '#libs/datasets';
import {
  encodeWeights,
  readWeightsStream,
  WEIGHTS_CONTENT_TYPE,
} from '#libs/federation';
import {
  namedWeightsOf,
  selectBackend,
  train,
  type ModelSpec,
  type NamedWeights,
  type TrainOptions,
} from '#libs/training';

/** The current round, as the platform describes it to a participant. */
export interface RoundInfo {
  runId: string;
  runStatus: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'STOPPED';
  round: number | null;
  roundStatus: 'OPEN' | 'AGGREGATING' | 'COMPLETED' | 'FAILED' | null;
  deadline: string | null;
  /** Whether this participant is asked to contribute this round. */
  selected: boolean;
  /** Whether this participant's update for the round is in. */
  submitted: boolean;
  globalVersionId: string | null;
  spec: ModelSpec;
  options: Omit<TrainOptions, 'spec' | 'data'> & { epochs: number };
  strategy: 'fedavg' | 'fedprox' | 'fedadam' | 'fedyogi';
  /** FedProx: the proximal term's weight. */
  mu?: number;
  maxSampleCount: number;
  /** Encode local rows with this schema (see rowsToBatches). */
  schema: DatasetSchema;
}

export interface UpdateReceipt {
  runId: string;
  round: number;
  sampleCount: number;
  sampleCountCapped: boolean;
  norm: number;
  clipped: boolean;
}

type Batches = AsyncIterable<ColumnBatch> | Iterable<ColumnBatch>;

/**
 * Local data, read afresh every epoch: batches encoded with the run's
 * schema (rowsToBatches does that for plain rows), and the training row
 * count reported with the update.
 */
export interface LocalData {
  train: (schema: DatasetSchema) => Batches;
  validation?: (schema: DatasetSchema) => Batches;
  rows: number;
}

export interface ParticipantOptions {
  /** The API's base URL, for example http://localhost:3000. */
  apiUrl: string;
  runId: string;
  /** The token startFederatedRun returned for this participant. */
  token: string;
}

/** An error the platform answered with: HTTP status and its error body. */
export class PlatformError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'PlatformError';
  }
}

/**
 * An external participant of a federated run. It trains with the same
 * libs/training code the platform's workers run, on data that never leaves
 * this process; only weights travel.
 */
export class FederatedParticipant {
  private readonly base: string;
  private backend?: ReturnType<typeof selectBackend>;

  constructor(private readonly options: ParticipantOptions) {
    this.base = `${options.apiUrl.replace(/\/$/, '')}/v1/federated-runs/${options.runId}`;
  }

  currentRound(): Promise<RoundInfo> {
    return this.json<RoundInfo>('/round');
  }

  /** The global weights a round trains from. */
  async globalWeights(round: number): Promise<NamedWeights> {
    const response = await this.request(`/rounds/${round}/weights`);
    const weights: NamedWeights = new Map();
    for await (const tensor of readWeightsStream(
      Readable.fromWeb(response.body! as never),
    )) {
      weights.set(tensor.name, { shape: tensor.shape, values: tensor.values });
    }

    return weights;
  }

  /** Sends trained weights and the number of rows they were trained on. */
  async submitUpdate(
    round: number,
    weights: NamedWeights | Uint8Array,
    sampleCount: number,
  ): Promise<UpdateReceipt> {
    const body =
      weights instanceof Uint8Array ? weights : encodeWeights(weights);

    return this.json<UpdateReceipt>(
      `/rounds/${round}/updates?sampleCount=${sampleCount}`,
      {
        method: 'POST',
        headers: { 'Content-Type': WEIGHTS_CONTENT_TYPE },
        body: body as unknown as RequestInit['body'],
      },
    );
  }

  /**
   * Trains the current round on local data and submits the update. Returns
   * null when there is nothing to do: no open round, not asked this round,
   * or already submitted.
   */
  async trainRound(data: LocalData): Promise<UpdateReceipt | null> {
    const info = await this.currentRound();
    if (
      info.runStatus !== 'RUNNING' ||
      info.roundStatus !== 'OPEN' ||
      !info.selected ||
      info.submitted ||
      info.round === null
    ) {
      return null;
    }
    const weights = await this.globalWeights(info.round);
    await (this.backend ??= selectBackend());
    const result = await train({
      ...info.options,
      spec: info.spec,
      data: {
        schema: info.schema,
        train: () => toAsync(data.train(info.schema)),
        ...(data.validation
          ? { validation: () => toAsync(data.validation!(info.schema)) }
          : {}),
      },
      base: { weights },
      ...(info.mu ? { proximal: { mu: info.mu } } : {}),
      recordSteps: false,
    });
    const trained = namedWeightsOf(result.model);
    result.model.dispose();

    return this.submitUpdate(info.round, trained, data.rows);
  }

  /**
   * Takes part until the run ends: trains every round it is asked to,
   * polling between rounds. Resolves with the rounds contributed to.
   */
  async participate(
    data: LocalData,
    options: { pollMs?: number; signal?: AbortSignal } = {},
  ): Promise<{ rounds: number[]; runStatus: RoundInfo['runStatus'] }> {
    const rounds: number[] = [];
    for (;;) {
      if (options.signal?.aborted) {
        return { rounds, runStatus: 'RUNNING' };
      }
      const info = await this.currentRound();
      if (info.runStatus !== 'RUNNING') {
        return { rounds, runStatus: info.runStatus };
      }
      try {
        const receipt = await this.trainRound(data);
        if (receipt) {
          rounds.push(receipt.round);
          continue;
        }
      } catch (error) {
        // The round closed while this participant trained: wait for the next.
        if (!(error instanceof PlatformError && error.status === 409)) {
          throw error;
        }
      }
      await new Promise((resolve) =>
        setTimeout(resolve, options.pollMs ?? 500),
      );
    }
  }

  private async request(path: string, init: RequestInit = {}) {
    const response = await fetch(`${this.base}${path}`, {
      ...init,
      headers: {
        ...(init.headers as Record<string, string>),
        Authorization: `Bearer ${this.options.token}`,
      },
      ...(init.body ? { duplex: 'half' } : {}),
    } as RequestInit);
    if (!response.ok) {
      const body = (await response.json().catch(() => ({}))) as {
        error?: { code?: string; message?: string; field?: string };
      };
      throw new PlatformError(
        response.status,
        body.error?.code,
        body.error?.message ?? `HTTP ${response.status}`,
        body.error?.field,
      );
    }

    return response;
  }

  private async json<T>(path: string, init?: RequestInit): Promise<T> {
    return (await (await this.request(path, init)).json()) as T;
  }
}

async function* toAsync<T>(
  items: AsyncIterable<T> | Iterable<T>,
): AsyncGenerator<T> {
  yield* items;
}
