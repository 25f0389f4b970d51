import * as tf from '@tensorflow/tfjs';

/** What tfjs' `model.save` writes for a layers model, caught in memory. */
export async function savedArtifacts(
  model: tf.LayersModel,
): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;

      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
        },
      };
    }),
  );

  return saved!;
}

/**
 * A layers model as the two files tfjs writes: model.json (naming
 * weights.bin) and the weight bytes, as an import receives them.
 */
export async function layersModelFiles(
  model: tf.LayersModel,
): Promise<{ modelJson: string; weights: Buffer }> {
  const saved = await savedArtifacts(model);

  return {
    modelJson: JSON.stringify({
      format: 'layers-model',
      modelTopology: saved.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: saved.weightSpecs }],
    }),
    weights: Buffer.from((saved.weightData as ArrayBuffer).slice(0)),
  };
}
