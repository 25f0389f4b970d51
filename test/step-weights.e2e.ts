import { describe, expect, it } from 'vitest';

import { codeOf, gql } from './support/client';
import {
  modelOnThreeTargets,
  startTraining,
  waitForJob,
} from './support/training';

interface Step {
  step: number;
  epoch: number;
  weights: Record<string, number>;
}

const stepsQuery = `query($id: ID!, $from: Int, $limit: Int) {
  job(id: $id) { stepWeights(from: $from, limit: $limit) { step epoch weights } } }`;

describe('per-step task weights', () => {
  it('records every step of an uncertainty-balanced run, with weights that move, page by page', async () => {
    const { project, model } = await modelOnThreeTargets(300);
    const jobId = await startTraining(project.key, model.id, {
      epochs: 2,
      batchSize: 32,
      balancing: 'uncertainty',
      learningRate: 0.05,
    });
    const job = await waitForJob(project.key, jobId, (j) =>
      ['SUCCEEDED', 'FAILED'].includes(j.status),
    );

    const all = await gql<{ job: { stepWeights: Step[] } }>(
      project.key,
      stepsQuery,
      { id: jobId, from: 0, limit: 100 },
    );
    const page = await gql<{ job: { stepWeights: Step[] } }>(
      project.key,
      stepsQuery,
      { id: jobId, from: 5, limit: 3 },
    );
    const tooMany = await gql(project.key, stepsQuery, {
      id: jobId,
      limit: 101,
    });

    expect(job.status).toBe('SUCCEEDED');
    const steps = all.data!.job.stepWeights;
    // 240 training rows in batches of 32: 8 steps an epoch, all kept.
    expect(steps.map((s) => s.step)).toEqual(
      Array.from({ length: 16 }, (_, i) => i),
    );
    expect(steps.map((s) => s.epoch)).toEqual([
      ...Array<number>(8).fill(1),
      ...Array<number>(8).fill(2),
    ]);
    for (const step of steps) {
      expect(Object.keys(step.weights).sort()).toEqual([
        'premium',
        'price',
        'tier',
      ]);
    }
    // Uncertainty weighting learns a weight per task: they start equal and
    // part as the tasks' losses differ.
    const first = steps[0].weights;
    const last = steps.at(-1)!.weights;
    expect(first.price).toBeCloseTo(first.tier, 6);
    expect(last.price).not.toBeCloseTo(first.price, 4);
    expect(new Set(Object.values(last).map((w) => w.toFixed(6))).size).toBe(3);
    expect(page.data!.job.stepWeights.map((s) => s.step)).toEqual([5, 6, 7]);
    expect(page.data!.job.stepWeights).toEqual(steps.slice(5, 8));
    expect(codeOf(tooMany)).toBe('BAD_USER_INPUT');
    expect(tooMany.errors?.[0].extensions?.field).toBe('limit');
  });
});
