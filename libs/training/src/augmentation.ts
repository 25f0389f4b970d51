import { TrainingConfigError } from './errors';
import type {
  EncodedFeatures,
  FeaturePlan,
  InputLayout,
} from './preprocessing';
import type { Random } from './random';
import type { EncodedLabels } from './tasks';

export interface TabularAugmentationOptions {
  /** Std of Gaussian noise added to standardised numeric features. */
  noise?: number;
  /** Probability that a numeric or categorical feature of a row is hidden
   * (treated as missing). */
  featureDropout?: number;
  /**
   * Mixup alpha: rows are blended with a shuffled copy of the batch by
   * lambda ~ Beta(alpha, alpha), labels alike; a label counts only where both
   * rows have it. Embedding inputs keep the first row's value. 0 = off.
   */
  mixup?: number;
}

export interface ImageAugmentationOptions {
  /** Mirror left-right with probability 0.5. */
  flip?: boolean;
  /** Pad by this many pixels, then crop back at a random offset. */
  cropPadding?: number;
  /** Rotate by a random angle within +-degrees (nearest pixel). */
  rotation?: number;
  /** Add a random offset within +-brightness (pixels scaled to [0, 1]). */
  brightness?: number;
  /** Scale contrast around the image mean by 1 +- contrast. */
  contrast?: number;
}

export interface AugmentationOptions {
  tabular?: TabularAugmentationOptions;
  image?: ImageAugmentationOptions;
}

export function validateAugmentation(
  options: AugmentationOptions | undefined,
): void {
  const check = (value: number | undefined, field: string, max: number) => {
    if (value !== undefined && !(value >= 0 && value <= max)) {
      throw new TrainingConfigError(
        `augmentation.${field}`,
        `use a number between 0 and ${max}.`,
      );
    }
  };
  check(options?.tabular?.noise, 'tabular.noise', 10);
  check(options?.tabular?.featureDropout, 'tabular.featureDropout', 1);
  check(options?.tabular?.mixup, 'tabular.mixup', 100);
  check(options?.image?.cropPadding, 'image.cropPadding', 64);
  check(options?.image?.rotation, 'image.rotation', 180);
  check(options?.image?.brightness, 'image.brightness', 1);
  check(options?.image?.contrast, 'image.contrast', 1);
}

/** Augments a training batch in place (mixup also blends `labels`). */
export function augment(
  options: AugmentationOptions,
  plans: FeaturePlan[],
  layout: InputLayout,
  features: EncodedFeatures,
  labels: EncodedLabels[],
  random: Random,
): void {
  const tabular = options.tabular;
  if (tabular && features.tabular) {
    tabularNoise(tabular, plans, layout, features, random);
  }
  if (options.image && features.image && layout.image) {
    const { height, width, channels } = layout.image;
    const pixels = height * width * channels;
    for (let row = 0; row < features.size; row++) {
      const image = features.image.subarray(row * pixels, (row + 1) * pixels);
      augmentImage(options.image, image, layout.image, random);
    }
  }
  if (tabular?.mixup) {
    mixup(tabular.mixup, features, labels, random);
  }
}

function tabularNoise(
  options: TabularAugmentationOptions,
  plans: FeaturePlan[],
  layout: InputLayout,
  features: EncodedFeatures,
  random: Random,
): void {
  const data = features.tabular!;
  const drop = options.featureDropout ?? 0;
  const noise = options.noise ?? 0;
  for (let row = 0; row < features.size; row++) {
    let offset = row * layout.tabularWidth;
    let embedding = 0;
    for (const plan of plans) {
      if (plan.kind === 'numeric') {
        const width = plan.missingIndicator ? 2 : 1;
        const missing = plan.missingIndicator && data[offset + 1] === 1;
        if (drop > 0 && random.next() < drop) {
          data[offset] = 0;
          if (plan.missingIndicator) {
            data[offset + 1] = 1;
          }
        } else if (noise > 0 && !missing) {
          data[offset] += noise * random.normal();
        }
        offset += width;
      } else if (plan.kind === 'categorical') {
        const size = plan.vocabulary.length;
        const hide = drop > 0 && random.next() < drop;
        if (plan.encoding === 'onehot') {
          if (hide) {
            data.fill(0, offset, offset + size);
            data[offset + size] = 1;
          }
          offset += size + 1;
        } else {
          if (hide) {
            features.embeddings[embedding][row] = size;
          }
          embedding++;
        }
      }
    }
  }
}

function mixup(
  alpha: number,
  features: EncodedFeatures,
  labels: EncodedLabels[],
  random: Random,
): void {
  const lambda = random.beta(alpha, alpha);
  const order = random.shuffle(
    Array.from({ length: features.size }, (_, i) => i),
  );
  const blend = (data: Float32Array | undefined, combineMask = false) => {
    if (!data) {
      return;
    }
    const width = data.length / features.size;
    const source = data.slice();
    for (let row = 0; row < features.size; row++) {
      const other = order[row];
      for (let c = 0; c < width; c++) {
        const a = source[row * width + c];
        const b = source[other * width + c];
        data[row * width + c] = combineMask
          ? a * b
          : lambda * a + (1 - lambda) * b;
      }
    }
  };
  blend(features.tabular);
  blend(features.image);
  for (const label of labels) {
    blend(label.values);
    blend(label.mask, true);
  }
}

function augmentImage(
  options: ImageAugmentationOptions,
  image: Float32Array,
  shape: { height: number; width: number; channels: number },
  random: Random,
): void {
  const { height, width, channels } = shape;
  const source = image.slice();
  const flip = options.flip === true && random.next() < 0.5;
  const padding = options.cropPadding ?? 0;
  const dy = padding > 0 ? random.int(2 * padding + 1) - padding : 0;
  const dx = padding > 0 ? random.int(2 * padding + 1) - padding : 0;
  const angle =
    ((options.rotation ?? 0) * (2 * random.next() - 1) * Math.PI) / 180;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const cy = (height - 1) / 2;
  const cx = (width - 1) / 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const tx = flip ? width - 1 - x : x;
      const rx = cos * (tx - cx) + sin * (y - cy) + cx + dx;
      const ry = -sin * (tx - cx) + cos * (y - cy) + cy + dy;
      const sx = Math.round(rx);
      const sy = Math.round(ry);
      const inside = sx >= 0 && sx < width && sy >= 0 && sy < height;
      for (let c = 0; c < channels; c++) {
        image[(y * width + x) * channels + c] = inside
          ? source[(sy * width + sx) * channels + c]
          : 0;
      }
    }
  }
  const brightness = options.brightness
    ? options.brightness * (2 * random.next() - 1)
    : 0;
  const contrast = options.contrast
    ? 1 + options.contrast * (2 * random.next() - 1)
    : 1;
  if (brightness !== 0 || contrast !== 1) {
    const mean = image.reduce((a, b) => a + b, 0) / image.length;
    for (let i = 0; i < image.length; i++) {
      image[i] = (image[i] - mean) * contrast + mean + brightness;
    }
  }
}
