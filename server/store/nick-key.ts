/**
 * The key two nicks are the same under: live sessions' nicks are unique by it
 * (migration 9's partial unique index), so "Ada", " ada " and "ＡＤＡ" (full-width)
 * cannot be two people at once. Shared by the repository and the migration: a
 * change here needs a migration that recomputes `sessions.nick_key`.
 */

/**
 * NFKC (compatibility forms: full-width letters, ligatures, circled digits fold to their plain letters), then
 * case-folded: upper then lower case (so "ß" and "SS" meet at "ss", as full case folding has it), then NFKC
 * again because case mapping can leave a string unnormalised. The nick is trimmed already (server/validation.ts).
 */
export function nickKey(nick: string): string {
  return nick.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}
