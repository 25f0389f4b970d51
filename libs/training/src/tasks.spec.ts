import { describe, expect, it } from 'vitest';

import { selectBackend } from './backend';
import { encodeLabels, planTask } from './tasks';
import { datasetFrom } from './testing/synthetic';

describe('tasks', () => {
  // 8 rows: flag has 2 positives of 8; grade has classes 0,0,0,0,0,0,1,2.
  const data = datasetFrom(
    {
      flag: Float32Array.of(1, 0, 0, 0, 0, 0, 1, 0),
      grade: Int32Array.of(0, 0, 0, 0, 0, 0, 1, 2),
    },
    { flag: 'boolean', grade: 'categorical' },
    { grade: ['low', 'mid', 'high'] },
  );

  it('balanced class weights are inverse class frequencies', () => {
    const binary = planTask(
      {
        name: 'flag',
        kind: 'binary',
        target: 'flag',
        classWeights: 'balanced',
      },
      data.schema,
      't',
    );
    const multiclass = planTask(
      {
        name: 'grade',
        kind: 'multiclass',
        target: 'grade',
        classWeights: 'balanced',
      },
      data.schema,
      't',
    );

    // counts (+1 smoothing): negatives 7, positives 3; total 10 over 2 classes.
    expect(binary.classWeights![0]).toBeCloseTo(10 / (2 * 7), 6);
    expect(binary.classWeights![1]).toBeCloseTo(10 / (2 * 3), 6);
    // counts (+1): 7, 2, 2; total 11 over 3 classes.
    expect(multiclass.classWeights).toEqual([11 / 21, 11 / 6, 11 / 6]);
    expect(multiclass.labels).toEqual(['low', 'mid', 'high']);
  });

  it('encodes labels as one-hot with a mask for missing values', () => {
    const task = planTask(
      { name: 'grade', kind: 'multiclass', target: 'grade' },
      data.schema,
      't',
    );
    const batch = {
      rowCount: 2,
      columns: { grade: Int32Array.of(2, -1) },
    };
    const labels = encodeLabels(task, [
      { batch, index: 0 },
      { batch, index: 1 },
    ]);

    expect(Array.from(labels.values)).toEqual([0, 0, 1, 0, 0, 0]);
    expect(Array.from(labels.mask)).toEqual([1, 0]);
  });
});

describe('selectBackend', () => {
  it('falls back from native TensorFlow to wasm and says why', async () => {
    const choice = await selectBackend();

    expect(choice.backend).toBe('wasm');
    expect(choice.skipped.map((s) => s.backend)).toEqual([
      'tensorflow',
      'tensorflow',
    ]);
    expect(choice.skipped[0].reason).toContain('@tensorflow/tfjs-node-gpu');
  });
});
