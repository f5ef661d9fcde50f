/**
 * What a hold proxy needs from a bus that shares it with other proxies or
 * workers: a control sink (calls go to the bus, not straight to the registry),
 * the shared connection state, and a reader it starts and stops. Two exist:
 * Redis (bus/redis-bus.ts, several hosts) and the cluster primary
 * (cluster/worker-bus.ts, several workers on one host).
 */
import type { RevokeCommand } from '../control/commands.js';
import type { HoldRegistry } from '../holds/hold-registry.js';
import type { SharedConnections } from '../holds/shared-connections.js';
import type { ControlSink } from './redis-bus.js';

export interface ProxyBus extends ControlSink {
  readonly connections: SharedConnections;
  /** Starts applying the bus's entries, in order, to `registry` (and revocations to the leases). */
  start(registry: HoldRegistry, revoke?: (commands: RevokeCommand[]) => void): Promise<void>;
  stop(): Promise<void>;
}

/** `/stats` and `/metrics` for the whole proxy when it is several workers (summed by the cluster primary). */
export interface WholeProxyViews {
  stats(): Promise<unknown>;
  metrics(): Promise<string>;
}
