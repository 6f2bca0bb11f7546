import type { Change } from './processor.js';
import type { Serde } from './serde.js';

/**
 * Serializes a table change for a repartition topic: one flag byte (1 = has new value,
 * 2 = has old value), the old value's length (4 bytes, big-endian), the old value, the new value.
 */
export function changeSerde<V>(inner: Serde<V>): Serde<Change<V>> {
  return {
    name: `change<${inner.name}>`,
    serialize(change, topic) {
      const n = change.newValue === null ? undefined : inner.serialize(change.newValue, topic);
      const o = change.oldValue === null ? undefined : inner.serialize(change.oldValue, topic);
      const oLen = o?.length ?? 0;
      const buf = Buffer.allocUnsafe(5 + oLen + (n?.length ?? 0));
      buf[0] = (n ? 1 : 0) | (o ? 2 : 0);
      buf.writeUInt32BE(oLen, 1);
      o?.copy(buf, 5);
      n?.copy(buf, 5 + oLen);
      return buf;
    },
    deserialize(data, topic) {
      const flags = data[0]!;
      const oLen = data.readUInt32BE(1);
      const oldValue = flags & 2 ? inner.deserialize(data.subarray(5, 5 + oLen), topic) : null;
      const newValue = flags & 1 ? inner.deserialize(data.subarray(5 + oLen), topic) : null;
      return { newValue, oldValue }; // same property order as every other Change object
    },
  };
}
