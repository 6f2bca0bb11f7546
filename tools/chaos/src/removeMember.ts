/**
 * Immediate takeovers (`pnpm chaos --immediate-takeover`): after a kill, the run removes the dead
 * instance's member from the group at once, with a LeaveGroup on its behalf (by member id; Kafka's
 * Admin.removeMembersFromConsumerGroup does the same for static members). The other members rebalance within a heartbeat and one of them takes the
 * dead instance's tasks over while the coordinator is still finishing, or has not yet aborted, the
 * killed transaction: the new owner's InitProducerId and OffsetFetch come right after the kill,
 * instead of after the dead member's session timeout.
 *
 * Each instance advertises `applicationServer = chaos-<name>:1`, which its subscription's userData
 * carries (taskAssignor.encodeUserData), so the dead member is found by name. kafkajs has no public
 * LeaveGroup for another member: the request goes through a cluster of kafkajs' own (its private
 * createCluster), to the group coordinator.
 */
import { AssignerProtocol, type Admin, type Kafka } from 'kafkajs';

export const chaosServer = (instanceName: string): string => `chaos-${instanceName.replace(/[^A-Za-z0-9-]/g, '-')}:1`;

interface LeaveBroker {
  leaveGroup(req: { groupId: string; memberId: string }): Promise<unknown>;
}
interface LeaveCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(req: { groupId: string }): Promise<LeaveBroker>;
}

/**
 * The member ids of the members advertising `server`. The coordinator returns members' metadata
 * only while the group is stable (during a rebalance describeGroups has empty metadata), so the run
 * asks before a fault as well as after it.
 */
export async function memberIdsOf(admin: Admin, groupId: string, server: string): Promise<string[]> {
  const { groups } = await admin.describeGroups([groupId]);
  return (groups[0]?.members ?? [])
    .filter((m) => {
      try {
        const md = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
        return (JSON.parse(md?.userData?.toString() ?? '{}') as { server?: string }).server === server;
      } catch {
        return false;
      }
    })
    .map((m) => m.memberId);
}

/** LeaveGroup for each member id, on its behalf; returns the ids the coordinator removed. */
export async function removeMembers(kafka: Kafka, groupId: string, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const create = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (create === undefined) throw new Error('kafkajs internals changed: no private createCluster on the Kafka client');
  const cluster = (kafka as unknown as Record<symbol, (o: object) => LeaveCluster>)[create]!({ metadataMaxAge: 60_000, allowAutoTopicCreation: false });
  await cluster.connect();
  const removed: string[] = [];
  try {
    const coordinator = await cluster.findGroupCoordinator({ groupId });
    for (const memberId of new Set(ids)) {
      // UNKNOWN_MEMBER_ID: the group had already dropped it (its session expired, or a rebalance).
      if (await coordinator.leaveGroup({ groupId, memberId }).then(() => true, () => false)) removed.push(memberId);
    }
  } finally {
    await cluster.disconnect().catch(() => undefined);
  }
  return removed;
}
