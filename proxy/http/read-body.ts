/**
 * Reads a whole message body into memory with a hard size limit; used for
 * held responses and control API bodies, both of which the proxy must see
 * whole before it acts.
 */
import type { IncomingMessage } from 'node:http';

/** The body is larger than the limit; the stream has been destroyed (held response) or left unread. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(readonly maxBytes: number) {
    super(`body exceeds ${maxBytes} bytes`);
  }
}

/**
 * Resolves with the body, or rejects with `BodyTooLargeError` as soon as more
 * than `maxBytes` arrive (or `Content-Length` announces more), or with the
 * stream's error if it fails or is cut short.
 */
export function readBody(message: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(message.headers['content-length'] ?? NaN);
    if (declared > maxBytes) {
      reject(new BodyTooLargeError(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    const cleanup = () => {
      message.off('data', onData);
      message.off('end', onEnd);
      message.off('error', onError);
      message.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        cleanup();
        message.pause();
        reject(new BodyTooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, bytes));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    // 'close' without 'end' means the peer went away mid-body.
    const onClose = () => {
      cleanup();
      reject(Object.assign(new Error('body cut short'), { code: 'ECONNRESET' }));
    };
    message.on('data', onData);
    message.once('end', onEnd);
    message.once('error', onError);
    message.once('close', onClose);
  });
}
