import * as tf from '@tensorflow/tfjs';

/**
 * The wasm backend of tfjs 4.22 has no Conv2DBackpropFilter kernel, so a CNN
 * cannot be trained on it. This registers one built on the wasm
 * Conv3DBackpropFilterV2 kernel (a 2-D convolution is a 3-D one of depth 1).
 * Only stride 1 is supported, which is what the CNN backbone uses.
 */
export function registerWasmTrainingKernels(): void {
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
