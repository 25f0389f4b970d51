import type {
  ColumnBatch,
  ColumnSchema,
  ColumnStatistics,
  DatasetSchema,
} from '#libs/datasets';

import { openStream, type BatchStream, type DataSourceOptions } from './data';
import { TrainingConfigError } from './errors';

/** A source's schema with the name errors call it by. */
export interface NamedSchema {
  name: string;
  schema: DatasetSchema;
}

/** A column to pool, with the option field that asked for it. */
export interface WantedColumn {
  column: string;
  field: string;
}

/**
 * Mean and population std of the union of groups with these moments, each
 * counting `weight` rows. Groups that agree give their moments back exactly.
 */
export function poolMoments(
  groups: { mean: number; std: number; weight: number }[],
): { mean: number; std: number } {
  const [first] = groups;
  if (groups.every((g) => g.mean === first.mean && g.std === first.std)) {
    return { mean: first.mean, std: first.std };
  }
  const total = groups.reduce((n, g) => n + g.weight, 0);
  const mean = groups.reduce((n, g) => n + (g.weight / total) * g.mean, 0);
  const variance = groups.reduce(
    (n, g) => n + (g.weight / total) * (g.std ** 2 + (g.mean - mean) ** 2),
    0,
  );

  return { mean, std: Math.sqrt(variance) };
}

/**
 * The categorical values of each column over every source, in first-seen
 * order: the first source's codes keep their meaning, and each later source
 * adds the values it has that earlier ones lack.
 */
export function unionVocabularies(
  sources: NamedSchema[],
): Map<string, string[]> {
  const union = new Map<string, string[]>();
  for (const { schema } of sources) {
    for (const column of schema.columns) {
      if (!column.vocabulary) {
        continue;
      }
      const values = union.get(column.name);
      if (!values) {
        union.set(column.name, [...column.vocabulary]);
        continue;
      }
      const known = new Set(values);
      values.push(...column.vocabulary.filter((v) => !known.has(v)));
    }
  }

  return union;
}

/**
 * The columns of several sources as one schema, as if their rows were
 * pooled. Each wanted column gets counts summed, numeric mean and std of
 * the union, min and max over all, top values summed by value, and its
 * categorical values from `vocabularies` (see {@link unionVocabularies});
 * a column with two types, or images of two shapes, is refused naming the
 * wanted column's field. A source without a column adds nothing to it. The
 * other columns are listed as the first source that has them gives them.
 */
export function poolSchemas(
  sources: NamedSchema[],
  wanted: WantedColumn[],
  vocabularies: Map<string, string[]>,
): DatasetSchema {
  const columns: ColumnSchema[] = [];
  for (const { schema } of sources) {
    for (const column of schema.columns) {
      if (columns.some((c) => c.name === column.name)) {
        continue;
      }
      const want = wanted.find((w) => w.column === column.name);
      const holders = sources.flatMap(({ name, schema: other }) => {
        const found = other.columns.find((c) => c.name === column.name);

        return found ? [{ name, column: found }] : [];
      });
      columns.push(
        want
          ? poolColumn(holders, want.field, vocabularies.get(column.name))
          : column,
      );
    }
  }

  return {
    columns,
    rowCount: sources.reduce((n, s) => n + s.schema.rowCount, 0),
  };
}

/**
 * Plans columns over a model's sources: the schema of any of them pooled
 * (see {@link poolSchemas}), noting for each source the values its
 * categorical codes are to be translated onto (see {@link recode}).
 */
export class SourcePool {
  private readonly recodings: Map<string, string[]>[];

  constructor(private readonly sources: NamedSchema[]) {
    this.recodings = sources.map(() => new Map());
  }

  /**
   * The schema of the sources at `indexes` for the wanted columns. A
   * categorical column's values are the union over them, or those `kept`
   * gives for it (a base model's, whose weights read them in that order;
   * values it lacks become missing). One source whose own values stand is
   * given back as it is.
   */
  schema(
    indexes: number[],
    wanted: WantedColumn[],
    kept: Map<string, string[]> = new Map(),
  ): DatasetSchema {
    const subset = indexes.map((i) => this.sources[i]);
    const vocabularies = unionVocabularies(subset);
    for (const { column } of wanted) {
      const values = kept.get(column);
      if (values && vocabularies.has(column)) {
        vocabularies.set(column, values);
      }
    }
    for (const i of indexes) {
      for (const { column, field } of wanted) {
        const values = vocabularies.get(column);
        const earlier = this.recodings[i].get(column);
        if (values && earlier && !sameValues(earlier, values)) {
          throw new TrainingConfigError(
            field,
            `column "${column}" of source "${this.sources[i].name}" is ` +
              'pooled with different sources for different uses; name one ' +
              'source per task with `source`.',
          );
        }
        if (values) {
          this.recodings[i].set(column, values);
        }
      }
    }
    const own =
      subset.length === 1 &&
      wanted.every(({ column }) => {
        const values = vocabularies.get(column);
        const mine = subset[0].schema.columns.find((c) => c.name === column);

        return !values || sameValues(values, mine?.vocabulary ?? []);
      });

    return own ? subset[0].schema : poolSchemas(subset, wanted, vocabularies);
  }

  /** The sources with their batches' codes translated as planned. */
  recode(sources: DataSourceOptions[]): DataSourceOptions[] {
    return sources.map((source, i) =>
      recodeSource(source, i, this.recodings[i]),
    );
  }
}

const sameValues = (a: string[], b: string[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

function poolColumn(
  holders: { name: string; column: ColumnSchema }[],
  field: string,
  vocabulary: string[] | undefined,
): ColumnSchema {
  const [first] = holders;
  // Numbers, whole numbers and booleans all stream as numbers.
  const numeric = (c: ColumnSchema) =>
    ['numeric', 'integer', 'boolean'].includes(c.type);
  const other = holders.find(
    (h) =>
      h.column.type !== first.column.type &&
      !(numeric(h.column) && numeric(first.column)),
  );
  if (other) {
    throw new TrainingConfigError(
      field,
      `column "${first.column.name}" is ${first.column.type} in source ` +
        `"${first.name}" but ${other.column.type} in source "${other.name}"; ` +
        'a column must have one type in every source.',
    );
  }
  const shape = (c: ColumnSchema) =>
    c.image ? `${c.image.height}x${c.image.width}x${c.image.channels}` : '';
  const reshaped = holders.find((h) => shape(h.column) !== shape(first.column));
  if (reshaped) {
    throw new TrainingConfigError(
      field,
      `images of column "${first.column.name}" are ${shape(first.column)} in ` +
        `source "${first.name}" but ${shape(reshaped.column)} in source ` +
        `"${reshaped.name}"; every source must store them at one shape.`,
    );
  }
  const type = holders.every((h) => h.column.type === first.column.type)
    ? first.column.type
    : 'numeric';
  const pooled: ColumnSchema = {
    name: first.column.name,
    type,
    statistics: poolStatistics(holders.map((h) => h.column.statistics)),
  };
  if (vocabulary && type === 'categorical') {
    pooled.vocabulary = vocabulary;
    pooled.statistics.distinct = vocabulary.length;
  }
  if (first.column.image) {
    pooled.image = { ...first.column.image };
  }

  return pooled;
}

function poolStatistics(all: ColumnStatistics[]): ColumnStatistics {
  const statistics: ColumnStatistics = {
    count: all.reduce((n, s) => n + s.count, 0),
    missing: all.reduce((n, s) => n + s.missing, 0),
  };
  const counted = all.filter((s) => s.count > 0 && s.mean !== undefined);
  if (counted.length > 0) {
    const mins = counted.flatMap((s) => (s.min === undefined ? [] : [s.min]));
    const maxes = counted.flatMap((s) => (s.max === undefined ? [] : [s.max]));
    if (mins.length > 0) {
      statistics.min = Math.min(...mins);
      statistics.max = Math.max(...maxes);
    }
    if (counted.every((s) => s.std !== undefined)) {
      const { mean, std } = poolMoments(
        counted.map((s) => ({ mean: s.mean!, std: s.std!, weight: s.count })),
      );
      statistics.mean = mean;
      statistics.std = std;
    } else {
      const total = counted.reduce((n, s) => n + s.count, 0);
      statistics.mean = counted.reduce(
        (n, s) => n + (s.count / total) * s.mean!,
        0,
      );
    }
  }
  if (all.some((s) => s.top)) {
    const counts = new Map<string, number>();
    for (const { value, count } of all.flatMap((s) => s.top ?? [])) {
      counts.set(value, (counts.get(value) ?? 0) + count);
    }
    statistics.top = [...counts]
      .sort((a, b) => b[1] - a[1])
      .map(([value, count]) => ({ value, count }));
  }

  return statistics;
}

/**
 * For each categorical column of `schema` in `vocabularies`, the code in
 * the vocabulary each of the schema's codes stands for (-1 where it has
 * none); columns whose codes mean the same in both are left out.
 */
export function categoryMaps(
  schema: DatasetSchema,
  vocabularies: Map<string, string[]>,
): Map<string, Int32Array> {
  const maps = new Map<string, Int32Array>();
  for (const column of schema.columns) {
    const target = vocabularies.get(column.name);
    if (!column.vocabulary || !target) {
      continue;
    }
    const index = new Map(target.map((v, i) => [v, i]));
    const map = Int32Array.from(column.vocabulary, (v) => index.get(v) ?? -1);
    if (map.some((code, i) => code !== i)) {
      maps.set(column.name, map);
    }
  }

  return maps;
}

/**
 * Batches with the categorical codes of the mapped columns translated (see
 * {@link categoryMaps}); missing values (-1) stay missing. Other columns are
 * passed on without a copy.
 */
export async function* recodeBatches(
  batches: AsyncIterable<ColumnBatch>,
  maps: Map<string, Int32Array>,
): AsyncGenerator<ColumnBatch> {
  for await (const batch of batches) {
    const columns = { ...batch.columns };
    for (const [name, map] of maps) {
      const codes = columns[name];
      if (codes instanceof Int32Array) {
        columns[name] = codes.map((code) => (code < 0 ? -1 : map[code]));
      }
    }
    yield { rowCount: batch.rowCount, columns };
  }
}

/** A source whose batches are recoded onto `vocabularies`. */
export function recodeSource(
  source: DataSourceOptions,
  index: number,
  vocabularies: Map<string, string[]>,
): DataSourceOptions {
  const maps = categoryMaps(source.schema, vocabularies);
  if (maps.size === 0) {
    return source;
  }
  const recode = (stream: BatchStream, field: string): BatchStream =>
    typeof stream === 'function'
      ? () => recodeBatches(openStream(stream, field), maps)
      : recodeBatches(openStream(stream, field), maps);

  return {
    ...source,
    train: recode(source.train, `data[${index}].train`),
    validation:
      source.validation &&
      recode(source.validation, `data[${index}].validation`),
  };
}
