/**
 * `GET /api/config`: what a client needs to choose its poll strategy. Public
 * (no session), since the login page already decides how it will poll.
 */
import { Router } from 'express';

export interface ClientConfigOptions {
  baseDomain: string | undefined;
  shardCount: number;
}

export function configRoutes(options: ClientConfigOptions): Router {
  const router = Router();
  const body = { baseDomain: options.baseDomain ?? null, shards: options.baseDomain ? options.shardCount : 0 };
  router.get('/config', (_req, res) => {
    res.json(body);
  });
  return router;
}
