/**
 * A minimal Parquet writer for tests: flat schemas of DOUBLE, INT64,
 * BOOLEAN and UTF-8 strings, optional columns with nulls, PLAIN encoding,
 * no compression, one data page per column chunk. Real files come from
 * Spark, pandas or DuckDB; this one exists so tests need no fixtures.
 */
export type ParquetTestType = 'double' | 'int64' | 'boolean' | 'string';

export interface ParquetTestColumn {
  name: string;
  type: ParquetTestType;
  values: (number | boolean | string | null)[];
}

const PHYSICAL = { boolean: 0, int64: 2, double: 5, string: 6 } as const;

export function parquetBytes(
  columns: ParquetTestColumn[],
  rowsPerGroup: number,
): Buffer {
  const rowCount = columns[0].values.length;
  const parts: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const groups: Buffer[] = [];
  for (let start = 0; start < rowCount; start += rowsPerGroup) {
    const end = Math.min(start + rowsPerGroup, rowCount);
    const chunks: Buffer[] = [];
    let groupBytes = 0;
    for (const column of columns) {
      const page = pageOf(column, column.values.slice(start, end));
      const chunkOffset = offset;
      parts.push(page);
      offset += page.length;
      groupBytes += page.length;
      const meta = struct([
        [1, 'i32', PHYSICAL[column.type]],
        [2, 'list-i32', [0, 3]],
        [3, 'list-string', [column.name]],
        [4, 'i32', 0],
        [5, 'i64', end - start],
        [6, 'i64', page.length],
        [7, 'i64', page.length],
        [9, 'i64', chunkOffset],
      ]);
      chunks.push(
        struct([
          [2, 'i64', chunkOffset],
          [3, 'struct', meta],
        ]),
      );
    }
    groups.push(
      struct([
        [1, 'list-struct', chunks],
        [2, 'i64', groupBytes],
        [3, 'i64', end - start],
      ]),
    );
  }
  const schema = [
    struct([
      [4, 'string', 'schema'],
      [5, 'i32', columns.length],
    ]),
    ...columns.map((column) =>
      struct([
        [1, 'i32', PHYSICAL[column.type]],
        [3, 'i32', 1],
        [4, 'string', column.name],
        ...(column.type === 'string'
          ? ([[6, 'i32', 0]] as Field[])
          : ([] as Field[])),
      ]),
    ),
  ];
  const footer = struct([
    [1, 'i32', 1],
    [2, 'list-struct', schema],
    [3, 'i64', rowCount],
    [4, 'list-struct', groups],
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(footer.length);
  parts.push(footer, length, Buffer.from('PAR1'));

  return Buffer.concat(parts);
}

function pageOf(
  column: ParquetTestColumn,
  values: ParquetTestColumn['values'],
): Buffer {
  const present = values.filter((v) => v !== null);
  const levels = definitionLevels(values.map((v) => (v === null ? 0 : 1)));
  const data = Buffer.concat([levels, plain(column.type, present)]);
  const header = struct([
    [1, 'i32', 0],
    [2, 'i32', data.length],
    [3, 'i32', data.length],
    [
      5,
      'struct',
      struct([
        [1, 'i32', values.length],
        [2, 'i32', 0],
        [3, 'i32', 3],
        [4, 'i32', 3],
      ]),
    ],
  ]);

  return Buffer.concat([header, data]);
}

/** RLE runs of bit width 1, prefixed by their byte length. */
function definitionLevels(levels: number[]): Buffer {
  const runs: number[] = [];
  let i = 0;
  while (i < levels.length) {
    let j = i;
    while (j < levels.length && levels[j] === levels[i]) j += 1;
    runs.push(...varint((j - i) << 1), levels[i]);
    i = j;
  }
  const body = Buffer.from(runs);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length);

  return Buffer.concat([length, body]);
}

function plain(
  type: ParquetTestType,
  values: (number | boolean | string | null)[],
): Buffer {
  if (type === 'double') {
    const out = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => out.writeDoubleLE(v as number, i * 8));

    return out;
  }
  if (type === 'int64') {
    const out = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => out.writeBigInt64LE(BigInt(v as number), i * 8));

    return out;
  }
  if (type === 'boolean') {
    const out = Buffer.alloc(Math.ceil(values.length / 8));
    values.forEach((v, i) => {
      if (v) out[i >> 3] |= 1 << (i & 7);
    });

    return out;
  }

  return Buffer.concat(
    values.map((v) => {
      const bytes = Buffer.from(String(v));
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);

      return Buffer.concat([length, bytes]);
    }),
  );
}

// Thrift compact protocol, only what the footer and page headers need.
type Field =
  | [number, 'i32' | 'i64', number]
  | [number, 'string', string]
  | [number, 'struct', Buffer]
  | [number, 'list-i32', number[]]
  | [number, 'list-string', string[]]
  | [number, 'list-struct', Buffer[]];

const TYPE = { i32: 5, i64: 6, string: 8, list: 9, struct: 12 } as const;

function struct(fields: Field[]): Buffer {
  const out: number[] = [];
  let last = 0;
  for (const [id, kind, value] of fields) {
    const type = kind.startsWith('list') ? TYPE.list : TYPE[kind as 'i32'];
    out.push(((id - last) << 4) | type);
    last = id;
    if (kind === 'i32' || kind === 'i64') {
      out.push(...varint(zigzag(value as number)));
    } else if (kind === 'string') {
      out.push(...binary(value as string));
    } else if (kind === 'struct') {
      out.push(...(value as Buffer));
    } else {
      const items = value as unknown[];
      const itemType =
        kind === 'list-i32'
          ? TYPE.i32
          : kind === 'list-string'
            ? TYPE.string
            : TYPE.struct;
      if (items.length < 15) out.push((items.length << 4) | itemType);
      else out.push(0xf0 | itemType, ...varint(items.length));
      for (const item of items) {
        if (kind === 'list-i32') out.push(...varint(zigzag(item as number)));
        else if (kind === 'list-string') out.push(...binary(item as string));
        else out.push(...(item as Buffer));
      }
    }
  }
  out.push(0);

  return Buffer.from(out);
}

function binary(text: string): number[] {
  const bytes = Buffer.from(text);

  return [...varint(bytes.length), ...bytes];
}

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function varint(n: number): number[] {
  const out: number[] = [];
  let value = n;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);

  return out;
}
