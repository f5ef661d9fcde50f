/**
 * A proxy worker's bus to the cluster primary (docs/scaleout.md "Workers"):
 * the Redis bus design with the primary playing Redis, or (with `redisUrl`)
 * relaying the Redis bus (primary-bus.ts); the worker cannot tell. Control calls this
 * worker receives are validated here (400s never leave it), then sent to the
 * primary as raw JSON; the primary orders them and sends every worker the same
 * entries, which this worker applies to its hold registry in arrival order.
 * Connection queues and tombstones (the primary's store, or Redis) are
 * reached through the primary by request/response messages.
 *
 * Without Redis the primary answers a call only after sending its entry to
 * every worker, and one IPC channel keeps order: so by the time `/publish/`
 * answers, this worker has the entry queued ahead of the answer. With Redis,
 * as on any proxy of the bus, the answer means Redis took it.
 */
import type { ControlResult, RevokeResult } from '../../protocol/control-api.js';
import type { RevokeCommand } from '../control/commands.js';
import { parseCloseBody, parsePublishBody, parsePushBody, parseRevokeBody } from '../control/control-validation.js';
import { registryTarget, type BusTarget } from '../bus/bus-target.js';
import { TooManyQueuesError } from '../holds/hold-delivery.js';
import type { HoldRegistry } from '../holds/hold-registry.js';
import type { EnqueueResult, SharedConnections, TakeResult } from '../holds/shared-connections.js';
import type { ItemResponse } from '../http/response.js';
import type { Logger } from 'pino';
import { BusUnavailableError } from '../bus/redis-bus.js';
import type { ProxyBus, WholeProxyViews } from '../bus/proxy-bus.js';
import { IpcBatcher, unbatch, type Batch } from './ipc-batch.js';
import { KnownEmpty } from './known-empty.js';
import { fromWire, ipcTimeoutMs, isMessage, toWire, type CallOp, type HelloReply, type PrimaryMessage, type WireError, type WireTake, type WorkerMessage } from './messages.js';

/** The IPC end a worker talks through: `process` in a cluster worker; injectable for tests. */
export interface IpcPort {
  send(message: WorkerMessage | Batch<WorkerMessage>): void;
  on(event: 'message', listener: (message: unknown) => void): void;
  off(event: 'message', listener: (message: unknown) => void): void;
}

export interface WorkerBusOptions {
  logger: Logger;
  controlMaxIdsPerCall: number;
  /** The client request timeout, ms (0: none); a call, take or gather waits for the primary `ipcTimeoutMs` of it. */
  requestTimeoutMs: number;
}

/** What this worker reports when the primary gathers `/stats` or `/metrics`. */
export interface LocalViews {
  stats(): unknown;
  metrics(): Promise<unknown>;
}

/**
 * Requests that timed out but may still be answered (the primary was slow, not gone), by request id, at most this
 * many (the oldest forgotten first): a late take's item must go back to its queue, not be dropped.
 */
const MAX_LATE_REQUESTS = 10_000;

/** A take this worker did not need to send: the queue is known empty. */
const NOTHING_QUEUED: Promise<TakeResult> = Promise.resolve({ kind: 'none' });

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class WorkerBus implements ProxyBus, WholeProxyViews {
  /** The hold registry entries apply to; null until `start` (nothing is parked before). */
  private target: BusTarget | null = null;
  private local: LocalViews | null = null;
  private readonly pending = new Map<number, Pending>();
  /** What to do with the answer to a request that timed out (`request`'s `late`). */
  private readonly late = new Map<number, (value: unknown) => void>();
  private nextId = 1;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly onMessage = (message: unknown) => unbatch(message, (one) => this.receive(one));
  /** What this worker sends, one write per event-loop turn (ipc-batch.ts): a fan-out's parks send a take each. */
  private readonly out = new IpcBatcher<WorkerMessage>((message) => this.write(message));
  /** Connection IDs known to have nothing queued: a poll under one parks without a take (known-empty.ts). */
  private readonly knownEmpty = new KnownEmpty({ sendSeen: (cids) => this.out.send({ k: 'seen', cids }) });
  readonly connections: SharedConnections;

  constructor(
    private readonly port: IpcPort,
    private readonly options: WorkerBusOptions,
  ) {
    this.log = options.logger;
    this.timeoutMs = ipcTimeoutMs(options.requestTimeoutMs);
    this.connections = {
      take: (cid) => {
        if (this.knownEmpty.parkWithoutTake(cid)) return NOTHING_QUEUED;
        this.knownEmpty.takeSent(cid);
        // A take that times out has still run in the primary if it was only slow: its item left the queue then,
        // and goes back to the head of it when the late answer comes (the poll parked meanwhile takes it).
        // A resync it carried was cleared there: it is set again, so the client still hears it.
        const lateTake = (value: unknown): void => {
          const wire = value as WireTake;
          if (wire.kind === 'item') {
            this.log.warn({ connectionId: cid }, 'a take answered after its timeout carried an item: requeued');
            void this.connections.requeue(cid, fromWire(wire.item));
          } else if (wire.kind === 'resync') {
            this.log.warn({ connectionId: cid, reason: wire.reason }, 'a take answered after its timeout carried a resync: set again');
            void this.connections.resyncAgain(cid, wire.reason);
          }
        };
        return this.request({ k: 'take', id: 0, cid }, lateTake).then(
          (value) => {
            const wire = value as WireTake;
            this.knownEmpty.takeAnswered(cid, wire.kind);
            return (wire.kind === 'item' ? { kind: 'item', item: fromWire(wire.item) } : wire) as TakeResult;
          },
          (err: unknown) => {
            this.knownEmpty.takeAnswered(cid, undefined);
            throw err;
          },
        );
      },
      requeue: async (cid, item: ItemResponse) => {
        this.knownEmpty.changed(cid);
        this.out.send({ k: 'requeue', cid, item: toWire(item) });
      },
      delivered: (cid) => this.out.send({ k: 'delivered', cid }),
      resyncAgain: async (cid, reason) => {
        this.knownEmpty.changed(cid);
        this.out.send({ k: 'resync-again', cid, reason });
      },
      // Pushes are queued by the primary as one call (so the unknown-queues cap sees them whole), never one by one.
      enqueue: (): Promise<EnqueueResult> => Promise.reject(new Error('pushes go through the primary')),
      close: (): Promise<number> => Promise.reject(new Error('closes go through the primary')),
    };
    port.on('message', this.onMessage);
  }

  /**
   * Entries apply from here on (none matter before: nothing is parked yet). The primary answers `hello` after
   * replaying the revocations still in force, so a replacement worker refuses revoked leases before it listens.
   */
  async start(registry: HoldRegistry, revoke?: (commands: RevokeCommand[]) => void): Promise<void> {
    this.target = registryTarget(registry, revoke);
    const hello = (await this.request({ k: 'hello', id: 0 })) as HelloReply | null;
    if (hello?.announcesQueueChanges === true) this.knownEmpty.enable();
  }

  async stop(): Promise<void> {
    this.port.off('message', this.onMessage);
    this.knownEmpty.stop();
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new BusUnavailableError('the worker is stopping'));
    }
    this.pending.clear();
    this.late.clear();
  }

  /** What this worker answers when the primary gathers the whole proxy's stats or metrics. */
  serveLocal(views: LocalViews): void {
    this.local = views;
  }

  // --- control calls (validated here, applied by every worker through the primary) ---

  async publish(body: unknown): Promise<ControlResult> {
    parsePublishBody(body);
    return (await this.call('publish', body)) as ControlResult;
  }

  async push(body: unknown): Promise<ControlResult> {
    const commands = parsePushBody(body, this.options.controlMaxIdsPerCall);
    const result = (await this.call('push', body)) as ControlResult;
    // Drops are counted where they happen (the primary's store); pushes where the call came in.
    this.target?.countPushes(commands.length, 0);
    return result;
  }

  async close(body: unknown): Promise<ControlResult> {
    parseCloseBody(body, this.options.controlMaxIdsPerCall);
    return (await this.call('close', body)) as ControlResult;
  }

  async revoke(body: unknown): Promise<RevokeResult> {
    parseRevokeBody(body);
    return (await this.call('revoke', body)) as RevokeResult;
  }

  // --- the whole proxy's views ---

  async stats(): Promise<unknown> {
    return this.request({ k: 'gather', id: 0, what: 'stats' });
  }

  async metrics(): Promise<string> {
    return (await this.request({ k: 'gather', id: 0, what: 'metrics' })) as string;
  }

  // --- IPC ---

  private call(op: CallOp, body: unknown): Promise<unknown> {
    return this.request({ k: 'call', id: 0, op, body: JSON.stringify(body) });
  }

  /** `late`, if given, receives the answer should it come after the timeout (the request has then run). */
  private request(message: Extract<WorkerMessage, { id: number }>, late?: (value: unknown) => void): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        if (late !== undefined) {
          this.late.set(id, late);
          if (this.late.size > MAX_LATE_REQUESTS) this.late.delete(this.late.keys().next().value as number);
        }
        reject(new BusUnavailableError(`the cluster primary did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.out.send({ ...message, id });
    });
  }

  /** One write of the batcher; if the channel is gone, every request in it fails now rather than at its timeout. */
  private write(message: WorkerMessage | Batch<WorkerMessage>): void {
    try {
      this.port.send(message);
    } catch (err) {
      for (const one of message.k === 'batch' ? (message as Batch<WorkerMessage>).m : [message as WorkerMessage]) {
        const p = 'id' in one ? this.pending.get(one.id) : undefined;
        if (p === undefined) continue; // not a request, or settled: the primary is gone and the worker exits on disconnect
        this.pending.delete((one as { id: number }).id);
        clearTimeout(p.timer);
        p.reject(new BusUnavailableError(`the cluster primary is unreachable: ${(err as Error).message}`));
      }
    }
  }

  private receive(raw: unknown): void {
    if (!isMessage(raw)) return;
    const message = raw as PrimaryMessage;
    if (message.k === 'entry') this.apply(message.t, message.d);
    else if (message.k === 'resync') {
      this.knownEmpty.forgetAll();
      this.target?.resyncAllParked(message.queuesLost);
    }
    else if (message.k === 'reply') this.settle(message.id, message.value, message.error);
    else if (message.k === 'collect') void this.collect(message.id, message.what);
  }

  private settle(id: number, value: unknown, error: WireError | undefined): void {
    const p = this.pending.get(id);
    if (p === undefined) {
      // Timed out already: a request whose answer still matters hands it on.
      const late = this.late.get(id);
      this.late.delete(id);
      if (late !== undefined && error === undefined) late(value);
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (error === undefined) p.resolve(value);
    else if (error.code === 'PROXY_ERR_TOO_MANY_QUEUES') p.reject(new TooManyQueuesError(error.message, error.retryAfterS ?? 5));
    else p.reject(new BusUnavailableError(error.message));
  }

  private async collect(id: number, what: 'stats' | 'metrics'): Promise<void> {
    let value: unknown = null;
    try {
      value = what === 'stats' ? { pid: process.pid, ...(this.local?.stats() as object) } : await this.local?.metrics();
    } catch (err) {
      this.log.warn({ err, what }, 'could not collect this worker\'s numbers');
    }
    this.out.send({ k: 'gathered', id, value });
  }

  /** A `push` entry names IDs (JSON array), a `close` entry is the close body: their marks go. */
  private queueChanged(type: 'push' | 'close', data: string): void {
    try {
      if (type === 'push') {
        for (const id of JSON.parse(data) as string[]) this.knownEmpty.changed(id);
      } else {
        for (const command of parseCloseBody(JSON.parse(data), Number.MAX_SAFE_INTEGER)) this.knownEmpty.changed(command.connectionId);
      }
    } catch {
      this.knownEmpty.forgetAll(); // unreadable here: trust no mark (the registry logs the entry)
    }
  }

  private apply(type: string, data: string): void {
    if (this.target === null) return; // not started: nothing parked here yet
    try {
      // Before the registry sees the entry: its `pushNotified` takes for the IDs parked here, which must ask.
      if ((type === 'push' || type === 'close') && this.knownEmpty.active) this.queueChanged(type, data);
      this.target.apply(type, data);
    } catch (err) {
      this.log.error({ err, type }, 'bad cluster entry skipped');
    }
  }
}
