/**
 * The kernel's count of connections dropped because a listen queue was full
 * (`TcpExt: ListenOverflows` in /proc/net/netstat, machine-wide). In a storm of
 * new connections these drops, not the server, can set the time to park
 * everyone: the client retransmits its SYN after 1, 3, 7, 15 s. The lab
 * records the count over the park phase so a slow point can be told apart.
 */
import { readFile } from 'node:fs/promises';

/** The current count, or undefined where /proc/net/netstat is absent (not Linux) or has no such field. */
export async function listenOverflows(): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile('/proc/net/netstat', 'utf8');
  } catch {
    return undefined;
  }
  // Pairs of lines: "TcpExt: <names...>" then "TcpExt: <values...>".
  const lines = text.split('\n').filter((line) => line.startsWith('TcpExt:'));
  if (lines.length < 2) return undefined;
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  const at = names.indexOf('ListenOverflows');
  const value = at > 0 ? Number(values[at]) : NaN;
  return Number.isFinite(value) ? value : undefined;
}
