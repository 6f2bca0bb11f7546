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
export function assignTasks(members: readonly string[], taskIds: readonly string[], previous: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
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
    out.get(leastLoaded())!.push(t);
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

interface UserData {
  readonly tasks: string[];
  /** The member's advertised `applicationServer` (host:port), for interactive query routing. */
  readonly server?: string;
}

export function encodeUserData(tasks: readonly string[], applicationServer?: string): Buffer {
  return Buffer.from(JSON.stringify({ tasks: [...tasks], ...(applicationServer === undefined ? {} : { server: applicationServer }) } satisfies UserData));
}

/** The tasks and applicationServer in a member's subscription or assignment userData. */
export function decodeMemberInfo(data: Buffer | null | undefined): { tasks: string[]; applicationServer: string | undefined } {
  const tasks = decodeUserData(data);
  let applicationServer: string | undefined;
  try {
    const parsed = JSON.parse(data?.toString() ?? '{}') as Partial<UserData>;
    if (typeof parsed.server === 'string') applicationServer = parsed.server;
  } catch {
    /* no server */
  }
  return { tasks, applicationServer };
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
      for (const m of members) {
        const meta = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
        previous.set(m.memberId, decodeUserData(meta?.userData));
      }
      const subscribed = new Set(topics);
      const byId = new Map(tasks.map((t) => [t.id, t]));
      const assignment = assignTasks(
        members.map((m) => m.memberId),
        tasks.map((t) => t.id),
        previous,
      );
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
          memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: perTopic, userData: encodeUserData(taskIds) }),
        };
      });
    },
    protocol({ topics }) {
      return {
        name: TASK_ASSIGNOR_NAME,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: encodeUserData(opts.ownedTasks(), opts.applicationServer) }),
      };
    },
  });
}
