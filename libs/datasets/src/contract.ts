/**
 * The contract between ingestion (libs/datasets, which writes shards) and
 * training (libs/training, which streams them). Training sees only these
 * plain types, never the bytes of a shard file.
 */

/** What ingestion infers a column to hold. */
export type ColumnType =
  'numeric' | 'integer' | 'boolean' | 'categorical' | 'text' | 'image';

export interface ImageShape {
  height: number;
  width: number;
  /** 1 for grayscale, 3 for RGB. */
  channels: number;
}

export interface ColumnStatistics {
  count: number;
  missing: number;
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
  /**
   * Most frequent values with their counts, most frequent first. For
   * categorical and boolean columns this is the class balance.
   */
  top?: { value: string; count: number }[];
  /** How many distinct values the column has, where that is known. */
  distinct?: number;
}

export interface ColumnSchema {
  name: string;
  type: ColumnType;
  statistics: ColumnStatistics;
  /** Categorical columns: the values, indexed by the codes in a batch. */
  vocabulary?: string[];
  /** Image columns: the shape every image is stored at. */
  image?: ImageShape;
}

export interface DatasetSchema {
  columns: ColumnSchema[];
  rowCount: number;
}

/**
 * One column of a batch, by column type:
 * - numeric, integer, boolean: Float32Array, one value a row, NaN = missing
 *   (booleans as 0 and 1);
 * - categorical: Int32Array of indexes into the vocabulary, -1 = missing;
 * - image: Uint8Array of rowCount x height x width x channels, row-major;
 * - text: not carried in batches.
 */
export type ColumnData = Float32Array | Int32Array | Uint8Array;

/** A run of rows in columnar form, as a shard reader yields them. */
export interface ColumnBatch {
  rowCount: number;
  columns: Record<string, ColumnData>;
}
