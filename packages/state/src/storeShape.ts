/**
 * Store shapes: what a store's bytes mean. State written by a store of one shape must not be read by
 * a store of another (a window size changed from 1 to 2 minutes, a value serde swapped, a plain store
 * turned timestamped), because the bytes would decode into values no input could have produced.
 *
 * A shape has two parts:
 * - the **record format**: what a changelog record means (kind, window size, timestamped values,
 *   the serdes' names). It is recorded in the task database and, as the fingerprint header
 *   `vltava.store.shape`, on every changelog record. A restore refuses records of another format.
 * - the **local layout**: the format plus what only the local database depends on (the segment
 *   interval, derived from the retention). A store whose layout changed but whose format did not
 *   (a retention change) is wiped locally and restored from its changelog, which holds the same
 *   records in either layout.
 */
import type { StoreSpec } from '@vltava/dsl';
import { StateStoreError } from '@vltava/dsl';
import { createHash } from 'node:crypto';
import { defaultSegmentInterval } from './segments.js';
import { DEFAULT_RETENTION_MS } from './storeStack.js';

/** The header on every changelog record: the fingerprint of the writer's record format. */
export const SHAPE_HEADER = 'vltava.store.shape';

export interface StoreShape {
  /** Human-readable record format, e.g. `window windowSizeMs=60000 timestamped keySerde=string valueSerde=timestamped<int64>`. */
  readonly format: string;
  /** 12 hex chars of sha256(format): the changelog header value. */
  readonly fingerprint: string;
  /** The header value as bytes (shared by all changelog records of the store). */
  readonly fingerprintBytes: Buffer;
  /** The format plus the local layout (segment interval, retention): stored in the task database. */
  readonly layout: string;
}

export function storeShapeOf(spec: StoreSpec): StoreShape {
  const parts: string[] = [spec.kind];
  if (spec.kind === 'window') parts.push(`windowSizeMs=${spec.windowSizeMs ?? 0}`);
  parts.push(spec.timestamped === true ? 'timestamped' : 'plain');
  parts.push(`keySerde=${spec.keySerde.name}`, `valueSerde=${spec.valueSerde.name}`);
  const format = parts.join(' ');
  const fingerprint = createHash('sha256').update(format).digest('hex').slice(0, 12);
  let layout = format;
  if (spec.kind !== 'keyValue') {
    const retention = spec.retentionMs ?? DEFAULT_RETENTION_MS;
    layout += ` retentionMs=${retention} segmentIntervalMs=${defaultSegmentInterval(retention)}`;
  }
  return { format, fingerprint, fingerprintBytes: Buffer.from(fingerprint, 'latin1'), layout };
}

/** The record format part of a stored layout string. */
export function formatOfLayout(layout: string): string {
  const i = layout.indexOf(' retentionMs=');
  return i < 0 ? layout : layout.slice(0, i);
}

/** What to do about state of another shape, for every error below. */
function remedy(applicationId: string): string {
  return (
    `Either give the changed store a new name (the store then starts empty and fills from new input), or start over: ` +
    `stop every instance, run \`vltava reset --application-id ${applicationId} --brokers <host:port> --input-topics <topics>\` ` +
    `(it deletes the changelog and repartition topics and rewinds the input) and call app.cleanUp() (or delete the state directory) before the next start.`
  );
}

export function localShapeMismatch(applicationId: string, taskId: string, store: string, dir: string, stored: string, declared: string): StateStoreError {
  return new StateStoreError(
    `store "${store}" of task ${taskId}: the local state in ${dir} was written by a store of another shape ` +
      `(${stored}); this topology declares ${declared}. Its records cannot be read as this store's. ${remedy(applicationId)}`,
    { taskId },
  );
}

export function localShapeUnknown(applicationId: string, taskId: string, store: string, dir: string, declared: string): StateStoreError {
  return new StateStoreError(
    `store "${store}" of task ${taskId}: the local state in ${dir} was written by a Vltava version that did not record store shapes, ` +
      `so it cannot be checked against this topology's ${declared}. ${remedy(applicationId)}`,
    { taskId },
  );
}

/**
 * Checks the shape header of a restored changelog record. `headers === undefined`: the reader does
 * not expose headers (nothing to check).
 */
export function checkRecordShape(
  headers: Readonly<Record<string, unknown>> | undefined,
  shape: StoreShape,
  context: { readonly applicationId: string; readonly taskId: string; readonly store: string; readonly topic: string; readonly offset: number },
): void {
  if (headers === undefined) return;
  const h = headers[SHAPE_HEADER];
  const value = Buffer.isBuffer(h) ? h : typeof h === 'string' ? Buffer.from(h, 'latin1') : Array.isArray(h) && Buffer.isBuffer(h[0]) ? (h[0] as Buffer) : undefined;
  if (value !== undefined && value.equals(shape.fingerprintBytes)) return;
  const what =
    value === undefined
      ? `has no ${SHAPE_HEADER} header: it was written by a Vltava version that did not record store shapes (before table and aggregation values carried their timestamp, the bytes differ too)`
      : `was written by a store of another shape (fingerprint ${value.toString('latin1')})`;
  throw new StateStoreError(
    `store "${context.store}" of task ${context.taskId}: record ${context.offset} of its changelog ${context.topic} ${what}; ` +
      `this topology declares ${shape.format} (fingerprint ${shape.fingerprint}). Restoring it would load state this store cannot read. ` +
      remedy(context.applicationId),
    { taskId: context.taskId },
  );
}
