/**
 * The newest event id the relay has published per room, in memory.
 *
 * A model that reads SQLite and then starts waiting has a gap between the
 * two: an event published inside it woke nobody. Comparing the room's last
 * event id seen by the read with this head closes the gap: a head above it
 * means "something was published since your read, look again".
 */
export class RoomHeads {
  private readonly heads = new Map<string, number>();

  /** Records a published event. The relay publishes in id order, so heads only grow; a replay is ignored. */
  advance(room: string, eventId: number): void {
    if (eventId > (this.heads.get(room) ?? 0)) this.heads.set(room, eventId);
  }

  /** The newest published event id of `room`, 0 before any. */
  get(room: string): number {
    return this.heads.get(room) ?? 0;
  }

  /** True when some room was published past the last id a read saw for it. */
  movedPast(lastIds: ReadonlyArray<{ room: string; lastEventId: number }>): boolean {
    return lastIds.some(({ room, lastEventId }) => this.get(room) > lastEventId);
  }
}
