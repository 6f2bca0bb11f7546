import { createRequire } from 'node:module';
import { CliError, UsageError } from './errors.js';
import { processIo, type Io } from './io.js';

export const HELP = `Usage: vltava <command> [options]

Commands:
  describe <module> [--mermaid]            print a module's topology as text or Mermaid
  reset --application-id <id> --brokers <list> --input-topics <list> [--to-earliest | --to-latest |
        --to-datetime <ISO> | --to-offset <n>] [--state-dir <dir>] [--dry-run]
                                           reset an application to reprocess its input
  topics --application-id <id> --brokers <list> [--json]
                                           internal topics, committed offsets and lag
  store inspect <state-dir> <application-id> <task-id> [<store>] [--serdes <module>]
                                           keys and values of a local state store
  audit --input <topic> (--output <topic> | --table <t> --db <url>) ...
                                           lost/duplicated check (with @vltava/sink installed)

Run "vltava <command> --help" for a command's options. Exit codes: 0 done, 1 failed, 2 bad usage.
`;

type Run = (argv: readonly string[], io: Io) => Promise<number>;
/** Loaded on use: `describe` never loads kafkajs, `topics` never loads LevelDB. */
const COMMANDS: Record<string, () => Promise<Run>> = {
  describe: async () => (await import('./describe.js')).describe,
  reset: async () => (await import('./reset.js')).reset,
  topics: async () => (await import('./topics.js')).topics,
  store: async () => (await import('./storeInspect.js')).storeCommand,
  audit: async () => audit,
};

/** `vltava audit` is `vltava-audit` of @vltava/sink (an optional peer dependency), when installed. */
const AUDIT_MODULE = '@vltava/sink/audit-cli';
async function audit(argv: readonly string[]): Promise<number> {
  let mod: { main?: (argv: string[]) => Promise<number> };
  try {
    mod = (await import(AUDIT_MODULE)) as typeof mod;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new CliError(`vltava audit is the lost/duplicated checker of @vltava/sink, which is not installed: npm install @vltava/sink`);
  }
  if (typeof mod.main !== 'function') throw new CliError(`${AUDIT_MODULE} has no main(argv): update @vltava/sink`);
  return mod.main([...argv]);
}

/** Runs one command line; returns the exit code. Errors are printed, never thrown. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(HELP);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    const pkg = createRequire(import.meta.url)('../package.json') as { version: string };
    io.out(pkg.version);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.err(`vltava: unknown command ${JSON.stringify(name)}; commands: ${Object.keys(COMMANDS).join(', ')}. Run "vltava --help".`);
    return 2;
  }
  try {
    return await (await command())(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\nRun "vltava ${err.command ?? name} --help" for its options.`);
      return err.exitCode;
    }
    if (err instanceof CliError) {
      io.err(`vltava ${name}: ${err.message}`);
      return err.exitCode;
    }
    io.err(`vltava ${name}: ${(err as Error)?.stack ?? String(err)}`);
    return 1;
  }
}
