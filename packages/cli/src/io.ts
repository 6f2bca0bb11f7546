/** Where a command writes: stdout lines and stderr lines (tests capture them). */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: Io = {
  out: (line) => void process.stdout.write(line.endsWith('\n') ? line : `${line}\n`),
  err: (line) => void process.stderr.write(line.endsWith('\n') ? line : `${line}\n`),
};
