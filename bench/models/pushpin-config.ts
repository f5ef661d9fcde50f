/**
 * Configuration of a private Pushpin 1.36 instance (the Debian package): the
 * one place its settings are chosen, shared by the models lab's target
 * (bench/models/pushpin.ts) and the interop tests (test/interop/). Pure text
 * plus one writer; starting the runner is the caller's business.
 *
 * A private instance: its own run directory (ZeroMQ ipc sockets, so instances
 * never collide on Pushpin's default tcp ports), its own zurl (the package's
 * internal.conf expects a system-wide one that is not running), one route to
 * the app, and `sig_key` shared with the app so it can verify `Grip-Sig`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PushpinConfigInput {
  /** ZeroMQ ipc sockets and pid files. */
  runDir: string;
  /** Logs of the four services. */
  logDir: string;
  /** Client HTTP port (condure). */
  httpPort: number;
  /** Publish API port (the handler's HTTP control server). */
  publishPort: number;
  /** The app's port: the only route. */
  appPort: number;
  /** Shared with the app: Pushpin signs `Grip-Sig` with it (HS256). */
  sigKey: string;
  maxClients: number;
}

/** pushpin.conf for a private instance (the routes file sits next to it). Pure: the one place its settings are chosen. */
export function pushpinConfig(input: PushpinConfigInput): string {
  // Room for every subscriber, the publisher and connections still closing between polls. Sized to the load
  // point, not left at the default 50,000: condure allocates per slot (measured: 10 MB RSS at 1,000, 36 MB at
  // 50,000), which would be charged to Pushpin as memory no subscriber uses.
  const maxConn = Math.max(1000, 2 * input.maxClients + 100);
  return `[global]
include={libdir}/internal.conf
rundir=${input.runDir}
ipc_prefix=pushpin-
port_offset=0

[runner]
# zurl too: the package's internal.conf points at a system-wide zurl that is not running.
services=condure,zurl,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:${input.httpPort}
logdir=${input.logDir}
# 1 = warnings: at 2 (info) every service logs a line per request, which would be measured as Pushpin's cost.
log_level=1
client_buffer_size=8192
client_maxconn=${maxConn}
allow_compression=false

[proxy]
routesfile=routes
# Our own zurl's sockets (its config is generated in rundir), not /var/run/zurl's.
zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in
zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream
zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out
max_open_requests=${maxConn}
debug=false
auto_cross_origin=false
accept_x_forwarded_protocol=false
set_x_forwarded_protocol=proto-only
x_forwarded_for=
x_forwarded_for_trusted=
accept_pushpin_route=false
log_from=false
log_user_agent=false
sig_iss=pushpin
sig_key=${input.sigKey}
updates_check=off

[handler]
# ipc in rundir rather than the default tcp ports 5560/5562/5563, so instances never collide.
push_in_spec=ipc://{rundir}/{ipc_prefix}push-in
push_in_sub_specs=ipc://{rundir}/{ipc_prefix}push-in-sub
push_in_sub_connect=false
push_in_http_addr=127.0.0.1
push_in_http_port=${input.publishPort}
push_in_http_max_headers_size=10000
push_in_http_max_body_size=1000000
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=ipc://{rundir}/{ipc_prefix}command
# The default 2500 messages/s paces a publish to thousands of parked polls (each delivery is a message):
# 4 s instead of 1 s to reach 10,000 (NOTES.md). The lab measures Pushpin, not its rate limit.
message_rate=1000000
message_hwm=${Math.max(25_000, 4 * input.maxClients)}
message_wait=5000
id_cache_ttl=60
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
stats_format=tnetstring
`;
}

/** Writes `pushpin.conf` and its `routes` file (every request to the app) into `configDir`, which must exist. */
export function writePushpinConfig(configDir: string, input: PushpinConfigInput): string {
  const confPath = join(configDir, 'pushpin.conf');
  writeFileSync(confPath, pushpinConfig(input));
  writeFileSync(join(configDir, 'routes'), `* 127.0.0.1:${input.appPort}\n`);
  return confPath;
}
