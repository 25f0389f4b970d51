import * as tf from '@tensorflow/tfjs';

/**
 * Fills two gaps of the tfjs 4.22 wasm backend for training:
 * - it has no Conv2DBackpropFilter kernel, so a CNN cannot be trained; one is
 *   built on the wasm Conv3DBackpropFilterV2 kernel (a 2-D convolution is a
 *   3-D one of depth 1), for stride 1, which is what the CNN backbone uses;
 * - its BatchMatMul is 6 to 18 times slower with a transposed operand (the
 *   backward pass of every dense layer) than transposing first and
 *   multiplying plainly, so BatchMatMul is wrapped to do that.
 */
export function registerWasmTrainingKernels(): void {
  registerTransposingMatMul();
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    return;
  }
  const reshape = tf.getKernel('Reshape', 'wasm');
  const conv3dFilter = tf.getKernel('Conv3DBackpropFilterV2', 'wasm');
  if (!reshape || !conv3dFilter) {
    return;
  }
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const { strides, pad, filterShape } = attrs as unknown as {
        strides: number | [number, number];
        pad: 'same' | 'valid' | number;
        filterShape: number[];
      };
      const [strideH, strideW] = Array.isArray(strides)
        ? strides
        : [strides, strides];
      if (strideH !== 1 || strideW !== 1) {
        throw new Error(
          'Conv2DBackpropFilter on wasm supports stride 1 only; use the cpu ' +
            'or a native backend for strided convolutions.',
        );
      }
      const run = (
        kernel: tf.KernelConfig,
        kernelInputs: tf.NamedTensorInfoMap,
        kernelAttrs: object,
      ) =>
        kernel.kernelFunc({
          inputs: kernelInputs,
          attrs: kernelAttrs as tf.NamedAttrMap,
          backend,
        }) as tf.TensorInfo;
      const lift = (t: tf.TensorInfo) =>
        run(reshape, { x: t }, { shape: [t.shape[0], 1, ...t.shape.slice(1)] });
      const x5 = lift(x);
      const dy5 = lift(dy);
      const filter5 = run(
        conv3dFilter,
        { x: x5, dy: dy5 },
        {
          strides: [1, 1, 1],
          pad,
          filterShape: [1, ...filterShape],
          dilations: [1, 1, 1],
        },
      );
      const filter = run(reshape, { x: filter5 }, { shape: filterShape });
      for (const t of [x5, dy5, filter5]) {
        (backend as tf.KernelBackend).disposeData(t.dataId);
      }

      return filter;
    },
  });
}

let matMulWrapped = false;

function registerTransposingMatMul(): void {
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (matMulWrapped || !original || !transpose) {
    return;
  }
  matMulWrapped = true;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    ...original,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = attrs as {
        transposeA: boolean;
        transposeB: boolean;
      };
      if (!transposeA && !transposeB) {
        return original.kernelFunc({ inputs, attrs, backend });
      }
      const swapLast = (t: tf.TensorInfo) => {
        const rank = t.shape.length;
        const perm = [...Array(rank).keys()];
        [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];

        return transpose.kernelFunc({
          inputs: { x: t },
          attrs: { perm },
          backend,
        }) as tf.TensorInfo;
      };
      const left = transposeA ? swapLast(a) : a;
      const right = transposeB ? swapLast(b) : b;
      const result = original.kernelFunc({
        inputs: { a: left, b: right },
        attrs: { ...attrs, transposeA: false, transposeB: false },
        backend,
      });
      for (const t of [left, right]) {
        if (t !== a && t !== b) {
          (backend as tf.KernelBackend).disposeData(t.dataId);
        }
      }

      return result;
    },
  });
}
