/**
 * What a bus reader applies its entries to (docs/scaleout.md). A proxy applies
 * them to its hold registry (`registryTarget`). A cluster primary on the Redis
 * bus relays them, unparsed and in stream order, to its workers
 * (cluster/redis-primary-bus.ts), and each worker applies them to its registry
 * with `registryTarget` in turn (cluster/worker-bus.ts).
 */
import type { RevokeCommand } from '../control/commands.js';
import { parseCloseBody, parsePublishBody, parseRevokeBody } from '../control/control-validation.js';
import type { HoldRegistry } from '../holds/hold-registry.js';

export interface BusTarget {
  /** One entry (`t` and `d` of protocol/bus.ts), in bus order. Throws if `data` cannot be applied. */
  apply(type: string, data: string): void;
  /** Entries may have been missed: re-ask every parked request (`queuesLost`: queued pushes were lost too). */
  resyncAllParked(queuesLost: boolean): void;
  /** Pushes this node put in the shared store, and how many of their items were dropped (for `/stats`). */
  countPushes(items: number, dropped: number): void;
}

/** Applies entries to `registry`, and revocations to the leases through `revoke`. Unknown types are ignored. */
export function registryTarget(registry: HoldRegistry, revoke?: (commands: RevokeCommand[]) => void): BusTarget {
  return {
    apply(type, data) {
      const body: unknown = JSON.parse(data);
      if (type === 'publish') registry.publish(parsePublishBody(body));
      else if (type === 'push') registry.pushNotified(body as string[]);
      else if (type === 'close') registry.close(parseCloseBody(body));
      else if (type === 'revoke') revoke?.(parseRevokeBody(body));
    },
    resyncAllParked: (queuesLost) => void registry.resyncAllParked(queuesLost),
    countPushes: (items, dropped) => registry.countPushes(items, dropped),
  };
}
