/**
 * `pnpm bench:soak`: the Vltava EOS word count at a steady input rate for minutes, with the process
 * RSS and the app's heap sampled every second. Memory is bounded when the RSS slope over the steady
 * part is about zero; a vocabulary of 1,000,000 (every word in turn) makes the store grow to a
 * million keys, to show that state size does not grow memory (LevelDB holds it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { AppConfig } from './appConfig.js';
import { CountsVerifier, percentile, procStatusBytes, rng, sleep, startChild } from './harness.js';
import type { SoakResult } from './results.js';

export interface SoakContext {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  readonly brokers: string;
  readonly work: string;
  readonly partitions: number;
  readonly appPath: string;
  /** Node flags of the app process (the heap limit). */
  readonly nodeFlags: readonly string[];
  readonly log: (m: string) => void;
  readonly newTopics: (...topics: string[]) => Promise<void>;
}

export interface SoakOptions {
  readonly vocab: number;
  readonly linesPerSec: number;
  readonly wordsPerLine: number;
  readonly seconds: number;
  readonly seed: number;
  /** The count store without range scans: no in-memory key index, the state in LevelDB only. */
  readonly pointOnly?: boolean;
}

/** Least-squares slope of y over x. */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

const vmRss = (pid: number): number => procStatusBytes(pid, 'VmRSS');

export async function runSoak(ctx: SoakContext, o: SoakOptions): Promise<SoakResult> {
  const uniform = o.vocab >= 100_000;
  const label = `Vltava EOS 100 ms, ${o.linesPerSec.toLocaleString('en-US')} lines/s, vocabulary ${o.vocab.toLocaleString('en-US')}${uniform ? ' (every word in turn)' : ' (Zipf-like)'}${o.pointOnly ? ', point-only store (rangeScans: false)' : ''}`;
  const appId = `soak-${o.vocab}-${Date.now().toString(36)}`;
  const input = `${appId}-in`;
  const cfg: AppConfig = { brokers: ctx.brokers, applicationId: appId, inputTopic: input, outputTopic: `${appId}-out`, guarantee: 'exactly-once', commitIntervalMs: 100, stateDir: mkdtempSync(join(ctx.work, 'soak-')), sessionTimeoutMs: 10_000, memSampleMs: 1_000, ...(o.pointOnly ? { pointOnly: true } : {}) };
  await ctx.newTopics(input, cfg.outputTopic);
  const ref = new Map<string, number>();
  const verifier = new CountsVerifier(new Map());
  await verifier.start(ctx.kafka, cfg.outputTopic);
  const child = startChild(process.execPath, [...ctx.nodeFlags, ctx.appPath, JSON.stringify(cfg)], { log: (l) => (/ERROR|Error/.test(l) ? ctx.log(`  [soak] ${l.slice(0, 300)}`) : undefined) });
  try {
    // Wait for the app to run before the clock starts: the soak measures steady state, not start-up.
    if ((await child.waitFor(/^STATE RUNNING/, 60_000)) === undefined) throw new Error(`the soak app did not reach RUNNING in 60 s: ${child.lines.slice(-5).join(' | ')}`);
    const rand = rng(o.seed);
    // The large vocabulary visits every word in turn (a prime stride, so neighbours are far apart):
    // the store holds all of them once vocab words were sent, and the rest of the run updates them.
    let drawn = 0;
    const word = (): string => (uniform ? `u${((drawn++ * 7919) % o.vocab).toString(36)}` : `w${Math.floor(o.vocab * rand() ** 3).toString(36)}`);
    const samples: [number, number, number][] = [];
    let heap = 0;
    let external = 0;
    let externalMax = 0;
    const memRe = /^MEM (\d+) (\d+)(?: (\d+))?$/;
    let lastLine = 0;
    const t0 = performance.now();
    const sampler = setInterval(() => {
      for (let i = lastLine; i < child.lines.length; i++) {
        const m = memRe.exec(child.lines[i]!);
        if (m) {
          heap = Number(m[2]);
          external = Number(m[3] ?? 0);
          externalMax = Math.max(externalMax, external);
        }
      }
      lastLine = child.lines.length;
      if (child.proc.pid !== undefined) samples.push([(performance.now() - t0) / 1000, vmRss(child.proc.pid) / 2 ** 20, heap / 2 ** 20]);
    }, 1_000);
    let sent = 0;
    let markers = 0;
    let lastLog = 0;
    while (performance.now() - t0 < o.seconds * 1000 && child.proc.exitCode === null) {
      const due = Math.floor(((performance.now() - t0) / 1000) * o.linesPerSec);
      const msgs: { value: string; partition: number }[] = [];
      for (; sent < due; sent++) {
        const ws: string[] = [];
        // One marker line in 50 gives the latency under load.
        if (sent % 50 === 0) ws.push(`zs${markers++}`);
        while (ws.length < o.wordsPerLine) ws.push(word());
        for (const w of ws) {
          const n = (ref.get(w) ?? 0) + 1;
          ref.set(w, n);
          verifier.expect(w, n);
        }
        if (sent % 50 === 0) verifier.markerSentAt(ws[0]!, performance.now());
        msgs.push({ value: ws.join(' '), partition: sent % ctx.partitions });
      }
      if (msgs.length) await ctx.producer.send({ topic: input, acks: -1, messages: msgs });
      const el = performance.now() - t0;
      if (el - lastLog > 30_000) {
        lastLog = el;
        const s = samples.at(-1);
        ctx.log(`  soak ${o.vocab}: ${Math.round(el / 1000)} s, ${sent} lines sent, ${ref.size} distinct words, ${verifier.remaining} not yet at their count, RSS ${s?.[1].toFixed(0) ?? '?'} MiB, heap ${s?.[2].toFixed(0) ?? '?'} MiB`);
      }
      await sleep(50);
    }
    const inputEnd = performance.now();
    const drained = await verifier.until(120_000);
    const drainSeconds = (performance.now() - inputEnd) / 1000;
    const stable = drained && (await verifier.stable(1_000));
    clearInterval(sampler);
    const seconds = (inputEnd - t0) / 1000;
    const warm = Math.max(30, seconds * 0.3);
    const steady = samples.filter(([t]) => t >= warm && t <= seconds);
    const warmSample = steady[0] ?? samples.at(-1) ?? [0, 0, 0];
    const lat = [...verifier.latencies].sort((a, b) => a - b);
    const exited = child.proc.exitCode !== null;
    const ok = stable && !exited && sent >= 0.95 * o.linesPerSec * o.seconds;
    return {
      label,
      ok,
      vocab: o.vocab,
      linesPerSec: o.linesPerSec,
      wordsPerLine: o.wordsPerLine,
      seconds,
      warmupSeconds: warm,
      keys: ref.size,
      rssWarmMb: warmSample[1],
      rssMaxMb: Math.max(0, ...samples.map((s) => s[1])),
      rssEndMb: samples.at(-1)?.[1] ?? 0,
      rssSlopeMbPerMin: slope(steady.map(([t, r]) => [t, r] as const)) * 60,
      heapWarmMb: warmSample[2],
      heapMaxMb: Math.max(0, ...samples.map((s) => s[2])),
      heapSlopeMbPerMin: slope(steady.map(([t, , h]) => [t, h] as const)) * 60,
      drainSeconds,
      p99Ms: percentile(lat, 99),
      load: loadavg().map((x) => Math.round(x * 100) / 100),
      note: [
        `${sent.toLocaleString('en-US')} lines sent in ${seconds.toFixed(0)} s; warm-up ${warm.toFixed(0)} s; ${samples.length} samples; V8 external memory (Buffers) at most ${(externalMax / 2 ** 20).toFixed(0)} MiB, ${(external / 2 ** 20).toFixed(0)} MiB at the end; p50 ${percentile(lat, 50).toFixed(0)} ms over ${lat.length} marker lines`,
        ...(stable ? [] : [`counts differ from the reference: ${verifier.wrong(3).join('; ')}`]),
        ...(verifier.overshoot.size ? [`${verifier.overshoot.size} words counted too often`] : []),
        ...(exited ? [`the app exited (${child.proc.exitCode}): ${child.lines.slice(-3).join(' | ')}`] : []),
      ].join('; '),
      samples: samples.filter((_s, i) => i % 5 === 0).map(([t, r, h]) => [Math.round(t * 10) / 10, Math.round(r * 10) / 10, Math.round(h * 10) / 10] as const),
    };
  } finally {
    await child.stop();
    await verifier.stop();
    rmSync(cfg.stateDir, { recursive: true, force: true });
  }
}
