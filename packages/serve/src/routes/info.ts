import type { FastifyInstance } from 'fastify';
import type { ServeContext } from '../serve-context.js';

/** `GET /v1/models`, `GET /health` (503 while the cluster recovers) and `GET /metrics` (Prometheus text). */
export function infoRoutes(app: FastifyInstance, { engine, model, metrics, started }: ServeContext): void {
  app.get('/v1/models', async () => ({
    object: 'list',
    data: [{ id: model.id, object: 'model', created: Math.floor(started / 1000), owned_by: 'seqpar', max_model_len: model.config.maxPositionEmbeddings }],
  }));
  app.get('/health', async (_request, reply) => {
    if (engine.recovering) return reply.code(503).send({ status: 'recovering' });
    return { status: 'ok' };
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
}
