import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { useKafka } from '@vltava/kafka-local/testing';
import { sqliteAdapter } from './sqlite.js';
import { registerSinkTests, type TestDb } from './testing/sinkCases.js';

const kafka = useKafka(test);
const dir = mkdtempSync(path.join(tmpdir(), 'vltava-sink-sqlite-'));
const file = path.join(dir, 'sink.db');
const db: TestDb = { name: 'sqlite', adapter: () => sqliteAdapter({ path: file }), child: { kind: 'sqlite', path: file } };
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

registerSinkTests(test, 'sqlite', kafka, () => db);
