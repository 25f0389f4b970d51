/**
 * What a user asks for: the input features, the backbone and one head per
 * task. Everything here is plain JSON so a job config can carry it.
 */

export type TaskKind = 'regression' | 'binary' | 'multiclass' | 'multilabel';

export type Activation = 'relu' | 'elu' | 'selu' | 'tanh' | 'sigmoid' | 'gelu';

export interface FeatureOptions {
  /** The dataset column this feature reads. */
  column: string;
  /**
   * Categorical columns only: `onehot` (default for 32 values or fewer) or
   * `embedding` (default above 32).
   */
  encoding?: 'onehot' | 'embedding';
  /** Embedding width; default min(16, ceil(1.6 * values^0.56)). */
  embeddingDim?: number;
  /**
   * Numeric columns only: add a 0/1 input that says the value was missing.
   * Default true when the column statistics report missing values.
   */
  missingIndicator?: boolean;
}

export interface MlpBackboneOptions {
  kind: 'mlp';
  /** Width of each hidden layer, for example `[128, 64]`. At least one. */
  widths: number[];
  /** Default `relu`. */
  activation?: Activation;
  /** Dropout rate after each hidden layer, in [0, 1). Default 0. */
  dropout?: number;
  /** Batch normalisation before each activation. Default false. */
  batchNorm?: boolean;
  /**
   * Add each layer's input to its output (a projection is learned when the
   * widths differ). Default false.
   */
  residual?: boolean;
}

export interface ConvBlockOptions {
  /** Number of filters of the block's convolution. */
  filters: number;
  /** Square kernel size. Default 3. */
  kernelSize?: number;
  /** Pool 2x2 after the block. Default true. */
  pool?: boolean;
}

export interface CnnBackboneOptions {
  kind: 'cnn';
  /** Convolution blocks, each conv (same padding), optional BN, ReLU, pool. */
  blocks: ConvBlockOptions[];
  /** Default `max`. */
  pooling?: 'max' | 'avg';
  /** Batch normalisation in each block. Default false. */
  batchNorm?: boolean;
  /** Dense layers after the convolutions (and any tabular inputs). */
  dense?: number[];
  /** Dropout rate after each dense layer. Default 0. */
  dropout?: number;
}

export type BackboneOptions = MlpBackboneOptions | CnnBackboneOptions;

export interface TaskOptions {
  /** Unique task name: letters, digits, `-`, `_` and `.`. */
  name: string;
  kind: TaskKind;
  /**
   * The target column. Multilabel tasks name one 0/1 column per label.
   * Missing labels (NaN, or code -1 for categorical) mask the task's loss for
   * that row.
   */
  target: string | string[];
  /**
   * Which data source carries the labels, when training on several sources.
   * Default: every source whose schema has the target columns.
   */
  source?: string;
  /** Regression loss. Default `mse`. */
  loss?: 'mse' | 'huber';
  /** Huber threshold, in standardised target units. Default 1. */
  huberDelta?: number;
  /** Multiclass only: label smoothing in [0, 1). Default 0. */
  labelSmoothing?: number;
  /**
   * Binary and multiclass: a weight per class (binary: [negative, positive])
   * or `balanced` (inverse class frequency from the column statistics).
   */
  classWeights?: number[] | 'balanced';
  /** Binary with a categorical target: the value counted as positive. */
  positiveLabel?: string;
  /** Multiclass: k of the top-k accuracy metric. Default 3. */
  topK?: number;
  /** Hidden layer widths of the head. Default none (a linear head). */
  hidden?: number[];
  /** Weight under the `fixed` balancing strategy. Default 1. */
  weight?: number;
}

export interface ModelSpec {
  /** The input features: column names or feature options. */
  features: (string | FeatureOptions)[];
  backbone: BackboneOptions;
  tasks: TaskOptions[];
}
