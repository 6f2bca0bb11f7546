/** Errors the CLI reports without a stack trace: what happened and what to do. */
export class CliError extends Error {
  /** The process exit code: 1 for a failure, 2 for a usage error. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Bad command line: unknown flag, missing option, wrong value. Exit code 2. */
export class UsageError extends CliError {
  constructor(message: string, readonly command?: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}
