/**
 * Fresh request ids: random (version 4) UUIDs in `crypto.randomUUID()`'s format, lower-case hex, made from one
 * batch of random bytes at a time.
 *
 * Why not `randomUUID()` itself: it also draws from a batch, but builds each string from twenty concatenated
 * pieces, a tree of cons strings of about 600 bytes per id (issue 15: 620 B of the ~8 KB a leased re-poll cycle
 * allocated). The id lives as long as its parked request, so the tree was promoted to old space at the next
 * scavenge before it died. Here the text of a whole batch is written once into one buffer and each id is one flat
 * 36-character string.
 *
 * The bits are Node's CSPRNG's (`randomFillSync`, as `randomUUID` uses), 122 random bits per id: ids stay
 * unguessable and, in practice, unique. Only the formatting is ours.
 */
import { randomFillSync } from 'node:crypto';

/** Ids per refill (`randomUUID` batches 128 too). */
const BATCH = 128;
const UUID_CHARS = 36;

const random = Buffer.allocUnsafeSlow(16 * BATCH);
const text = Buffer.allocUnsafeSlow(UUID_CHARS * BATCH);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
let next = BATCH;

/** Draws a new batch and writes its text: `xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx`, V one of 8, 9, a, b (RFC 9562 §5.4). */
function refill(): void {
  randomFillSync(random);
  let t = 0;
  for (let r = 0; r < random.length; r += 16) {
    for (let b = 0; b < 16; b++) {
      if (b === 4 || b === 6 || b === 8 || b === 10) text[t++] = 0x2d; // '-'
      let byte = random[r + b]!;
      if (b === 6) byte = (byte & 0x0f) | 0x40; // version 4
      else if (b === 8) byte = (byte & 0x3f) | 0x80; // variant 10xx
      text[t++] = HEX[byte >> 4]!;
      text[t++] = HEX[byte & 0x0f]!;
    }
  }
  // The bytes are in `text` now; the copy is not kept.
  random.fill(0);
  next = 0;
}

/** A new random UUID (v4), as `crypto.randomUUID()` writes it, as one flat string. */
export function randomRequestId(): string {
  if (next === BATCH) refill();
  const start = next++ * UUID_CHARS;
  return text.toString('latin1', start, start + UUID_CHARS);
}
