/**
 * Task assignment: whole tasks, sticky, balanced.
 *
 * A task is (sub-topology, partition). The kafkajs group leader runs `assignTasks` over all members:
 * each member's previously owned tasks travel in its subscription userData, and it keeps them as
 * long as that keeps the group balanced, so a rebalance moves as little state as possible. A task's
 * partitions (the same partition number of every source topic of its sub-topology, co-partitioned
 * topics included) always go to one member together.
 */
import { AssignerProtocol, type Assigner, type PartitionAssigner } from 'kafkajs';

export interface TaskRef {
  readonly id: string;
  /** The topic-partitions this task consumes. */
  readonly partitions: readonly { readonly topic: string; readonly partition: number }[];
}

/**
 * Assigns task ids to members: first every member keeps what it owned (up to the balanced quota),
 * then unowned tasks go to the least-loaded member, then tasks move from the most to the least loaded
 * member until no two members differ by more than one. Deterministic for the same input.
 */
export function assignTasks(
  members: readonly string[],
  taskIds: readonly string[],
  previous: ReadonlyMap<string, readonly string[]>,
  /** Tasks each member kept a standby copy of: an orphaned task goes to one of them (its state is warm there). */
  previousStandby: ReadonlyMap<string, readonly string[]> = new Map(),
): Map<string, string[]> {
  const sortedMembers = [...members].sort();
  const out = new Map<string, string[]>(sortedMembers.map((m) => [m, []]));
  if (sortedMembers.length === 0) return out;
  const quota = Math.ceil(taskIds.length / sortedMembers.length);
  const valid = new Set(taskIds);
  const taken = new Set<string>();
  for (const m of sortedMembers) {
    for (const t of previous.get(m) ?? []) {
      if (!valid.has(t) || taken.has(t) || out.get(m)!.length >= quota) continue;
      out.get(m)!.push(t);
      taken.add(t);
    }
  }
  const leastLoaded = (): string => sortedMembers.reduce((a, b) => (out.get(b)!.length < out.get(a)!.length ? b : a));
  for (const t of taskIds) {
    if (taken.has(t)) continue;
    const warm = sortedMembers.find((m) => (previousStandby.get(m) ?? []).includes(t) && out.get(m)!.length < quota);
    out.get(warm ?? leastLoaded())!.push(t);
    taken.add(t);
  }
  for (;;) {
    const most = sortedMembers.reduce((a, b) => (out.get(b)!.length > out.get(a)!.length ? b : a));
    const least = leastLoaded();
    if (out.get(most)!.length - out.get(least)!.length <= 1) break;
    out.get(least)!.push(out.get(most)!.pop()!);
  }
  for (const list of out.values()) list.sort();
  return out;
}

/**
 * Standby placement (Kafka Streams' num.standby.replicas): each stateful task gets up to `replicas`
 * standbys on members other than its active one, preferring members that already had it (warm), then
 * the member with the fewest standbys. Deterministic for the same input.
 */
export function assignStandbys(
  active: ReadonlyMap<string, readonly string[]>,
  statefulTasks: readonly string[],
  replicas: number,
  previousStandby: ReadonlyMap<string, readonly string[]> = new Map(),
): Map<string, string[]> {
  const members = [...active.keys()].sort();
  const out = new Map<string, string[]>(members.map((m) => [m, []]));
  if (replicas <= 0) return out;
  const ownerOf = new Map<string, string>();
  for (const [m, ts] of active) for (const t of ts) ownerOf.set(t, m);
  for (const t of statefulTasks) {
    const candidates = members.filter((m) => m !== ownerOf.get(t));
    for (let r = 0; r < replicas && candidates.length > 0; r++) {
      candidates.sort((a, b) => {
        const wa = (previousStandby.get(a) ?? []).includes(t) ? 0 : 1;
        const wb = (previousStandby.get(b) ?? []).includes(t) ? 0 : 1;
        return wa - wb || out.get(a)!.length - out.get(b)!.length || (a < b ? -1 : 1);
      });
      const m = candidates.shift()!;
      out.get(m)!.push(t);
    }
  }
  for (const list of out.values()) list.sort();
  return out;
}

interface UserData {
  readonly tasks: string[];
  /** Standby tasks (in an assignment: to run; in a subscription: kept locally). */
  readonly standby?: string[];
  /** The member's advertised `applicationServer` (host:port), for interactive query routing. */
  readonly server?: string;
}

export function encodeUserData(tasks: readonly string[], applicationServer?: string, standby: readonly string[] = []): Buffer {
  return Buffer.from(
    JSON.stringify({
      tasks: [...tasks],
      ...(standby.length === 0 ? {} : { standby: [...standby] }),
      ...(applicationServer === undefined ? {} : { server: applicationServer }),
    } satisfies UserData),
  );
}

/** The tasks and applicationServer in a member's subscription or assignment userData. */
export function decodeMemberInfo(data: Buffer | null | undefined): { tasks: string[]; standby: string[]; applicationServer: string | undefined } {
  const tasks = decodeUserData(data);
  let applicationServer: string | undefined;
  let standby: string[] = [];
  try {
    const parsed = JSON.parse(data?.toString() ?? '{}') as Partial<UserData>;
    if (typeof parsed.server === 'string') applicationServer = parsed.server;
    if (Array.isArray(parsed.standby)) standby = parsed.standby.filter((t): t is string => typeof t === 'string');
  } catch {
    /* none */
  }
  return { tasks, standby, applicationServer };
}

export function decodeUserData(data: Buffer | null | undefined): string[] {
  if (!data || data.length === 0) return [];
  try {
    const parsed = JSON.parse(data.toString()) as Partial<UserData>;
    return Array.isArray(parsed.tasks) ? parsed.tasks.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

export interface TaskAssignorOptions {
  /** All tasks of the topology with their partitions (computed at start-up from topic metadata). */
  readonly tasks: () => readonly TaskRef[];
  /** The tasks this member owns now (sent as userData when it joins). */
  readonly ownedTasks: () => readonly string[];
  /** This member's advertised host:port (config applicationServer), sent with its subscription. */
  readonly applicationServer?: string;
  /** Standby copies per stateful task (numStandbyReplicas), and which tasks are stateful. */
  readonly standbyReplicas?: number;
  readonly statefulTasks?: () => readonly string[];
  /** The standby tasks this member keeps now (sent with its subscription). */
  readonly standbyTasks?: () => readonly string[];
}

export const TASK_ASSIGNOR_NAME = 'VltavaStickyTaskAssignor';

/** A kafkajs PartitionAssigner that assigns whole tasks, stickily. */
export function taskAssignor(opts: TaskAssignorOptions): PartitionAssigner {
  return (): Assigner => ({
    name: TASK_ASSIGNOR_NAME,
    version: 1,
    async assign({ members, topics }) {
      const tasks = opts.tasks();
      const previous = new Map<string, string[]>();
      const previousStandby = new Map<string, string[]>();
      for (const m of members) {
        const meta = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
        const info = decodeMemberInfo(meta?.userData);
        previous.set(m.memberId, info.tasks);
        previousStandby.set(m.memberId, info.standby);
      }
      const subscribed = new Set(topics);
      const byId = new Map(tasks.map((t) => [t.id, t]));
      const assignment = assignTasks(
        members.map((m) => m.memberId),
        tasks.map((t) => t.id),
        previous,
        previousStandby,
      );
      const standbys = assignStandbys(assignment, opts.statefulTasks?.() ?? [], opts.standbyReplicas ?? 0, previousStandby);
      return [...assignment].map(([memberId, taskIds]) => {
        const perTopic: Record<string, number[]> = {};
        for (const id of taskIds) {
          for (const tp of byId.get(id)!.partitions) {
            if (!subscribed.has(tp.topic)) continue;
            (perTopic[tp.topic] ??= []).push(tp.partition);
          }
        }
        return {
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: perTopic, userData: encodeUserData(taskIds, undefined, standbys.get(memberId) ?? []) }),
        };
      });
    },
    protocol({ topics }) {
      return {
        name: TASK_ASSIGNOR_NAME,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: encodeUserData(opts.ownedTasks(), opts.applicationServer, opts.standbyTasks?.() ?? []) }),
      };
    },
  });
}
