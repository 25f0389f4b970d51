// Predicts with a downloaded Chorus artifact using only @tensorflow/tfjs and
// yauzl: no Chorus code. Everything it needs to prepare rows and read the
// outputs is in the artifact's manifest.json.
//
//   node predict-plain.mjs model.zip rows.json > predictions.json
//
// rows.json holds an array of objects keyed by column name, as sent to
// `predict`. The output has the same shape as `predict`'s answer:
// { predictions: [{ <task>: ... } | null], errors: [{ row, field, message }] }.

import { Buffer } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import process from 'node:process';

import * as tf from '@tensorflow/tfjs';
import yauzl from 'yauzl';

/** The zip's files by name, as Buffers (an artifact is a few files). */
function readZip(bytes) {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true }, (error, zip) => {
      if (error) {
        return reject(error);
      }
      const files = {};
      zip.on('entry', (entry) => {
        zip.openReadStream(entry, (openError, stream) => {
          if (openError) {
            return reject(openError);
          }
          const chunks = [];
          stream.on('data', (chunk) => chunks.push(chunk));
          stream.on('end', () => {
            files[entry.fileName] = Buffer.concat(chunks);
            zip.readEntry();
          });
          stream.on('error', reject);
        });
      });
      zip.on('end', () => resolve(files));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

/** Loads model.json + weights.bin from memory. */
async function loadModel(files) {
  const modelJson = JSON.parse(files['model.json'].toString());
  const weights = files['weights.bin'];

  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
      weightData: weights.buffer.slice(
        weights.byteOffset,
        weights.byteOffset + weights.byteLength,
      ),
    }),
  );
}

const isMissing = (value) =>
  value === null || value === undefined || value === '';

/**
 * Turns rows into the model's inputs, in manifest.inputs order: the dense
 * tabular input (numeric features standardised, with a 0/1 missing flag
 * where the manifest says so; one-hot categoricals with a last slot for
 * unknown or missing), then one one-hot input per embedded categorical,
 * then the image (pixels times scale).
 */
function encode(manifest, rows) {
  const { features, layout } = manifest;
  const errors = [];
  const tabular = new Float32Array(rows.length * layout.tabularWidth);
  const embeddings = layout.embeddings.map(() => new Int32Array(rows.length));
  const pixels = layout.image
    ? layout.image.height * layout.image.width * layout.image.channels
    : 0;
  const image = new Float32Array(rows.length * pixels);
  rows.forEach((row, r) => {
    if (row === null || typeof row !== 'object') {
      errors.push({ row: r, field: '', message: 'a row must be an object.' });

      return;
    }
    let offset = r * layout.tabularWidth;
    let embedding = 0;
    for (const feature of features) {
      const value = row[feature.column];
      if (feature.kind === 'numeric') {
        let number = isMissing(value) ? NaN : Number(value);
        if (!isMissing(value) && !Number.isFinite(number)) {
          errors.push({
            row: r,
            field: feature.column,
            message: `expected a number, got ${JSON.stringify(value)}.`,
          });
          number = NaN;
        }
        const missing = Number.isNaN(number);
        tabular[offset++] = missing ? 0 : (number - feature.mean) / feature.std;
        if (feature.missingIndicator) {
          tabular[offset++] = missing ? 1 : 0;
        }
      } else if (feature.kind === 'categorical') {
        const size = feature.vocabulary.length;
        const found = isMissing(value)
          ? -1
          : feature.vocabulary.indexOf(String(value));
        const index = found < 0 ? size : found;
        if (feature.encoding === 'onehot') {
          tabular[offset + index] = 1;
          offset += size + 1;
        } else {
          embeddings[embedding++][r] = index;
        }
      } else if (Array.isArray(value) && value.length === pixels) {
        value.forEach((p, i) => {
          image[r * pixels + i] = Number(p) * feature.scale;
        });
      } else {
        errors.push({
          row: r,
          field: feature.column,
          message: `expected ${pixels} pixel values.`,
        });
      }
    }
  });
  const inputs = [];
  if (layout.tabularWidth > 0) {
    inputs.push(tf.tensor2d(tabular, [rows.length, layout.tabularWidth]));
  }
  layout.embeddings.forEach((input, i) =>
    inputs.push(
      tf.tidy(() =>
        tf.oneHot(tf.tensor1d(embeddings[i], 'int32'), input.size).toFloat(),
      ),
    ),
  );
  if (layout.image) {
    const { height, width, channels } = layout.image;
    inputs.push(tf.tensor4d(image, [rows.length, height, width, channels]));
  }

  return { inputs, errors };
}

/** One task's prediction for one row from its head's output. */
function read(task, values) {
  switch (task.kind) {
    case 'regression':
      return { value: values[0] * task.targetStd + task.targetMean };
    case 'binary':
      return {
        label: task.labels[values[0] >= 0.5 ? 1 : 0],
        probability: values[0],
      };
    case 'multiclass': {
      const best = values.indexOf(Math.max(...values));

      return {
        label: task.labels[best],
        probability: values[best],
        probabilities: Object.fromEntries(
          task.labels.map((label, i) => [label, values[i]]),
        ),
      };
    }
    default:
      return {
        labels: task.labels.filter((_, i) => values[i] >= 0.5),
        probabilities: Object.fromEntries(
          task.labels.map((label, i) => [label, values[i]]),
        ),
      };
  }
}

export async function predictPlain(zipBytes, rows) {
  const files = await readZip(zipBytes);
  const manifest = JSON.parse(files['manifest.json'].toString());
  const model = await loadModel(files);
  const { inputs, errors } = encode(manifest, rows);
  const result = model.predict(inputs);
  const outputs = (Array.isArray(result) ? result : [result]).map((t) =>
    t.arraySync(),
  );
  tf.dispose([inputs, result]);
  model.dispose();
  const failed = new Set(errors.map((e) => e.row));
  const predictions = rows.map((_, r) =>
    failed.has(r)
      ? null
      : Object.fromEntries(
          manifest.tasks.map((task, t) => [
            task.name,
            read(task, outputs[t][r]),
          ]),
        ),
  );

  return { predictions, errors };
}

const [zipPath, rowsPath] = process.argv.slice(2);
if (zipPath && rowsPath) {
  const rows = JSON.parse(await readFile(rowsPath, 'utf8'));
  const answer = await predictPlain(await readFile(zipPath), rows);
  process.stdout.write(`${JSON.stringify(answer)}\n`);
} else if (process.argv[1]?.endsWith('predict-plain.mjs')) {
  process.stderr.write('usage: node predict-plain.mjs model.zip rows.json\n');
  process.exit(2);
}
