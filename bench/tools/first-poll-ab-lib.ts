/**
 * What the two interleaved first-poll tools share (first-poll-app-ab.ts, first-poll-proxy-ab.ts): the stack's
 * secrets, a free port, a process's CPU on the scheduler's ns clock, and a small JSON request over a kept-alive
 * agent.
 */
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';

export { freePort } from './parked-clients.js';

export const SECRET = 'storm-secret-0123456789abcdef';
export const CONTROL_SECRET = 'storm-control-secret-0123456789';
export const LEASE_KEY = 'storm-lease-key-fedcba987654321';

/** CPU time of every thread of `pid` so far, ms: the scheduler's ns clock, not /proc/PID/stat's 10 ms ticks. */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
}

/** The kept-alive agent `request` uses unless told otherwise; a tool destroys it at its end. */
export const sharedAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RequestInit {
  method?: string;
  cookie?: string;
  body?: unknown;
  gripSig?: string;
  authorization?: string;
  agent?: http.Agent;
}

/** One request to 127.0.0.1:`port`, a JSON body if given; the whole answer as text. */
export function request(port: number, path: string, init: RequestInit = {}): Promise<Answer> {
  return new Promise((resolveAnswer, reject) => {
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    const headers: http.OutgoingHttpHeaders = {};
    if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    if (init.cookie !== undefined) headers.cookie = init.cookie;
    if (init.gripSig !== undefined) headers['grip-sig'] = init.gripSig;
    if (init.authorization !== undefined) headers.authorization = init.authorization;
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', agent: init.agent ?? sharedAgent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
