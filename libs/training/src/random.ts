/**
 * A small seeded generator (sfc32) whose whole state is four 32-bit integers,
 * so a checkpoint can store it and a resumed run draws the same numbers.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) {
      this.nextUint32();
    }
  }

  static fromState(state: readonly number[]): Random {
    const random = new Random(0);
    random.setState(state);

    return random;
  }

  getState(): number[] {
    return [this.a, this.b, this.c, this.d];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4) {
      throw new Error(`A random state has 4 integers, got ${state.length}.`);
    }
    [this.a, this.b, this.c, this.d] = state.map((value) => value >>> 0);
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;

    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A seed for a tfjs op or initializer. */
  seed(): number {
    return this.nextUint32() % 2147483647;
  }

  normal(): number {
    const u = 1 - this.next();
    const v = this.next();

    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Gamma(shape, 1) by Marsaglia and Tsang. */
  gamma(shape: number): number {
    if (shape < 1) {
      return this.gamma(shape + 1) * Math.pow(this.next(), 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const v = Math.pow(1 + c * x, 3);
      if (
        v > 0 &&
        Math.log(1 - this.next()) < 0.5 * x * x + d - d * v + d * Math.log(v)
      ) {
        return d * v;
      }
    }
  }

  beta(alpha: number, beta: number): number {
    const x = this.gamma(alpha);

    return x / (x + this.gamma(beta));
  }

  /** Shuffles in place (Fisher-Yates). */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }

    return items;
  }
}
