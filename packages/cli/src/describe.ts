import { parse } from './args.js';
import { CliError } from './errors.js';
import type { Io } from './io.js';
import { loadModule } from './loadModule.js';

export const DESCRIBE_HELP = `Usage: vltava describe <module> [--mermaid] [--export <name>]

Imports <module> (a path to a .js file, or a .ts file Node can strip types from) and prints its
topology: topology.describe() as text, or as a Mermaid flowchart with --mermaid.

The module exports the topology as its default export or as "topology"; either may also be a
StreamsBuilder (build() is called) or a function, possibly async, that returns one of those.
--export <name> picks another export.
`;

/** What `describe()` of @vltava/dsl's Topology returns. */
interface DescriptionLike {
  toString(): string;
  toMermaid(): string;
}

interface TopologyLike {
  describe(): DescriptionLike;
}

const isTopology = (v: unknown): v is TopologyLike => typeof v === 'object' && v !== null && typeof (v as TopologyLike).describe === 'function';
const isBuilder = (v: unknown): v is { build(): unknown } =>
  typeof v === 'object' && v !== null && typeof (v as { build?: unknown }).build === 'function' && typeof (v as { stream?: unknown }).stream === 'function';

export async function describe(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parse('describe', argv, { mermaid: { type: 'boolean' }, export: { type: 'string' } }, { min: 1, max: 1, names: '<module>' });
  if (values.help === true) {
    io.out(DESCRIBE_HELP);
    return 0;
  }
  const path = positionals[0]!;
  const mod = await loadModule(path, 'topology');
  const topology = await findTopology(mod, path, typeof values.export === 'string' ? values.export : undefined);
  const description = topology.describe();
  if (typeof description?.toMermaid !== 'function') throw new CliError(`${path}: describe() did not return a TopologyDescription (toString/toMermaid)`);
  io.out(values.mermaid === true ? description.toMermaid() : description.toString());
  return 0;
}

export async function findTopology(mod: Record<string, unknown>, path: string, name?: string): Promise<TopologyLike> {
  const names = name !== undefined ? [name] : ['default', 'topology'];
  for (const n of names) {
    if (!(n in mod)) continue;
    let v: unknown = mod[n];
    if (typeof v === 'function' && !isTopology(v)) {
      try {
        v = await (v as () => unknown)();
      } catch (err) {
        throw new CliError(`${path}: the exported function "${n}" threw: ${(err as Error).message}`);
      }
    }
    if (isBuilder(v)) v = v.build();
    if (isTopology(v)) return v;
    throw new CliError(`${path}: export "${n}" is not a Topology (nor a StreamsBuilder, nor a function returning one): got ${describeValue(v)}`);
  }
  const exported = Object.keys(mod);
  throw new CliError(
    name !== undefined
      ? `${path} has no export "${name}" (it exports: ${exported.join(', ') || 'nothing'})`
      : `${path} exports no topology: export it as default or as "topology" (or name the export with --export); it exports: ${exported.join(', ') || 'nothing'}`,
  );
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object with keys ${Object.keys(v).slice(0, 8).join(', ') || '(none)'}`;
  return typeof v;
}
