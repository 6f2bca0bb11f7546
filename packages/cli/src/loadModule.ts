import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CliError } from './errors.js';

/** Imports a user module given by path (relative to the working directory), with a clear error. */
export async function loadModule(path: string, what: string): Promise<Record<string, unknown>> {
  const file = resolve(path);
  if (!existsSync(file)) throw new CliError(`${what} module ${path} not found (looked at ${file})`);
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new CliError(`could not import ${what} module ${path}: ${(err as Error).message}`);
  }
}
