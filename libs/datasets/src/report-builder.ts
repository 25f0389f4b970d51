import {
  type DatasetProblem,
  type DatasetProblemCode,
  type ProblemExample,
  type ProblemSeverity,
  type ValidationReport,
  withoutUndefined,
} from './problems';

export interface ProblemInput {
  code: DatasetProblemCode;
  severity: ProblemSeverity;
  message: string;
  example?: ProblemExample;
}

/**
 * Collects problems with bounded memory: one entry per code and column, a
 * count, and at most `maxExamples` examples each.
 */
export class ReportBuilder {
  private readonly problems = new Map<string, DatasetProblem>();

  constructor(private readonly maxExamples = 5) {}

  /** Adds one occurrence; the message of the first occurrence is kept. */
  add(input: ProblemInput): void {
    const column = input.example?.column;
    const key = `${input.code}\u0000${column ?? ''}`;
    const existing = this.problems.get(key);
    if (existing !== undefined) {
      existing.count += 1;
      if (existing.examples.length < this.maxExamples && input.example) {
        existing.examples.push(withoutUndefined({ ...input.example }));
      }

      return;
    }
    const example = input.example
      ? withoutUndefined({ ...input.example })
      : undefined;
    this.problems.set(
      key,
      withoutUndefined({
        code: input.code,
        severity: input.severity,
        message: input.message,
        row: example?.row,
        line: example?.line,
        column,
        count: 1,
        examples: example ? [example] : [],
      }),
    );
  }

  /** Adds a problem already grouped elsewhere (count and examples given). */
  addGrouped(problem: DatasetProblem): void {
    const key = `${problem.code}\u0000${problem.column ?? ''}`;
    if (!this.problems.has(key)) {
      this.problems.set(key, {
        ...problem,
        examples: problem.examples.slice(0, this.maxExamples),
      });
    }
  }

  has(code: DatasetProblemCode): boolean {
    for (const problem of this.problems.values()) {
      if (problem.code === code) return true;
    }

    return false;
  }

  build(): ValidationReport {
    const problems = [...this.problems.values()].sort(
      (a, b) =>
        severityRank(a.severity) - severityRank(b.severity) ||
        (a.row ?? 0) - (b.row ?? 0),
    );

    return { ok: problems.every((p) => p.severity !== 'error'), problems };
  }
}

function severityRank(severity: ProblemSeverity): number {
  return severity === 'error' ? 0 : 1;
}
