import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTinyModel, type TinyModelOptions } from '@seqpar/model';
import type { ClusterClient, ClusterGenerateOptions } from '@seqpar/runtime';

/** A chat template in the Jinja dialect of Hugging Face models. */
export const CHAT_TEMPLATE = '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}';

/** What CHAT_TEMPLATE renders, written out by hand. */
export const renderedChat = (messages: ReadonlyArray<{ role: string; content: string }>) => `${messages.map((m) => `<|${m.role}|>${m.content}\n`).join('')}<|assistant|>`;

/** The tiny models' tokenizer maps every byte to its own id. */
export const byteIds = (text: string) => [...Buffer.from(text, 'utf8')];

/** Tiny model directories under one temp folder, removed by `cleanup`. */
export function tinyModels() {
  const root = mkdtempSync(join(tmpdir(), 'seqpar-serve-'));
  return {
    root,
    async make(name: string, options: TinyModelOptions & { chatTemplate?: string; tokenizer?: boolean } = {}): Promise<string> {
      const dir = join(root, name);
      await makeTinyModel(dir, { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 300, seed: 7, ...options });
      if (options.chatTemplate) writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: options.chatTemplate, bos_token: '<s>', eos_token: '</s>' }));
      if (options.tokenizer === false) rmSync(join(dir, 'tokenizer.json'));
      return dir;
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** The tokens a single cluster.generate gives (the reference the server's answers must equal). */
export async function clusterTokens(cluster: ClusterClient, dir: string, prompt: readonly number[], options: ClusterGenerateOptions): Promise<number[]> {
  const tokens: number[] = [];
  for await (const { token } of cluster.generate(dir, prompt, options)) tokens.push(token);
  return tokens;
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
}

/** One sample of a metric (labels as written in the exposition, e.g. `{status="ok"}`), 0 when absent. */
export async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

/** Polls until `check` holds (bounded). */
export async function eventually(check: () => Promise<boolean>, withinMs = 20_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(100);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Worker processes still alive after `withinMs` (none, once a cluster closed). */
export async function survivors(pids: readonly number[], withinMs = 5000): Promise<number[]> {
  const deadline = Date.now() + withinMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
  return pids.filter(isAlive);
}
