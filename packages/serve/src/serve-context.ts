import type { Engine } from './engine.js';
import type { ServerMetrics } from './metrics.js';
import type { ServedModel } from './served-model.js';

/** What the routes share. */
export interface ServeContext {
  readonly engine: Engine;
  readonly model: ServedModel;
  readonly metrics: ServerMetrics;
  /** When the server started, ms since the epoch. */
  readonly started: number;
}
