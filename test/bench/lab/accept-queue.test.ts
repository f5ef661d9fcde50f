import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { waitFor } from '../../helpers/app-harness.js';
import { listenBacklog, parseAcceptQueue, readAcceptQueue, watchAcceptQueue } from '../../../bench/lab/accept-queue.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

describe('accept queue of a listening port', () => {
  test('sums rx_queue of the LISTEN rows of the port, and stops at the first row in another state', () => {
    const text = [
      HEADER,
      '   0: 0100007F:1F90 00000000:0000 0A 00001000:00000011 00:00000000 00000000     0        0 1 1 0 10',
      '   1: 00000000:1F90 00000000:0000 0A 00000200:00000002 00:00000000 00000000     0        0 2 1 0 10',
      '   2: 0100007F:1F91 00000000:0000 0A 00001000:00000005 00:00000000 00000000     0        0 3 1 0 10',
      // An established row on the same port after the listeners: not a queue.
      '   3: 0100007F:1F90 0100007F:C350 01 00000000:00000400 00:00000000 00000000     0        0 4 1 0 10',
    ].join('\n');
    assert.equal(parseAcceptQueue(text, 0x1f90), 0x11 + 2);
    assert.equal(parseAcceptQueue(text, 0x1f91), 5);
    assert.equal(parseAcceptQueue(text, 0x1f92), undefined);
  });

  test('a server that stops accepting: the queue fills to its backlog, and the watch sees it full', { skip: process.platform !== 'linux' }, async () => {
    const backlog = 8;
    // A real listener in its own process, stopped once listening: the kernel completes handshakes, nobody accepts.
    const child = spawn(
      process.execPath,
      ['-e', `const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:${backlog}},()=>console.log(s.address().port))`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const clients: Socket[] = [];
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const port = Number(line.toString().trim());
      assert.ok(port > 0);
      assert.equal(await readAcceptQueue(port), 0);
      assert.equal(await listenBacklog(port), backlog);
      child.kill('SIGSTOP');
      const watch = watchAcceptQueue([port], 10);
      // More clients than the queue holds; the kernel takes backlog + 1 (Linux), the others wait in SYN retries.
      for (let i = 0; i < backlog + 4; i++) {
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => {});
        clients.push(socket);
      }
      const deadline = Date.now() + 5000;
      let queued = await readAcceptQueue(port);
      while ((queued ?? 0) < backlog && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        queued = await readAcceptQueue(port);
      }
      assert.ok(queued !== undefined && queued >= backlog && queued <= backlog + 1, `queued ${queued}`);
      // The watch has sampled the full queue twice (so it was seen full across an interval).
      await waitFor('two samples of the full queue', () => watch.samplesAtLeast(backlog) >= 2);
      const summary = await watch.stop();
      assert.equal(summary.backlog, backlog);
      assert.ok(summary.peak >= backlog, `peak ${summary.peak}`);
      assert.ok(summary.fullMs > 0, `full for ${summary.fullMs} ms`);
      assert.ok(summary.samples > 1);
    } finally {
      for (const socket of clients) socket.destroy();
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    }
  });

  test('a port nobody listens on reads as undefined, and its watch takes no samples', async () => {
    assert.equal(await readAcceptQueue(1), undefined);
    assert.equal(await listenBacklog(1), undefined);
    const summary = await watchAcceptQueue([1], 5).stop();
    assert.deepEqual(summary, { peak: 0, backlog: 0, fullMs: 0, samples: 0 });
  });
});
