import type { ServerResponse } from 'node:http';

/** Server-sent events as OpenAI streams them: `data: {json}` events, ended by `data: [DONE]`. */
export class EventStream {
  constructor(
    private readonly response: ServerResponse,
    headers: Record<string, string> = {},
  ) {
    response.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    response.flushHeaders();
  }

  /** False once the client is gone. */
  get open(): boolean {
    return !this.response.destroyed && !this.response.writableEnded;
  }

  send(body: unknown): void {
    if (this.open) this.response.write(`data: ${JSON.stringify(body)}\n\n`);
  }

  end(): void {
    if (this.open) this.response.end('data: [DONE]\n\n');
  }
}
