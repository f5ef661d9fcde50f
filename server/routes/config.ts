/**
 * `GET /api/config`: what a client needs before its first request: the shard
 * domain and count (to choose its poll strategy) and the input limits (to count
 * characters as the user types instead of learning them from a refusal).
 * Public (no session), since the login page already needs both.
 */
import { Router } from 'express';
import { NICK_MAX_CHARS, ROOM_NAME_MAX_CHARS } from '../validation.js';

export interface ClientConfigOptions {
  baseDomain: string | undefined;
  shardCount: number;
  /** The longest message, code points after trimming (server/validation.ts counts the same way). */
  messageMaxChars: number;
}

export function configRoutes(options: ClientConfigOptions): Router {
  const router = Router();
  const body = {
    baseDomain: options.baseDomain ?? null,
    shards: options.baseDomain ? options.shardCount : 0,
    limits: { messageMaxChars: options.messageMaxChars, nickMaxChars: NICK_MAX_CHARS, roomNameMaxChars: ROOM_NAME_MAX_CHARS },
  };
  router.get('/config', (_req, res) => {
    res.json(body);
  });
  return router;
}
