import { createCluster } from '@seqpar/runtime';
import { randomTensor, seededRandom } from '@seqpar/core';
const r = seededRandom(1);
const q = randomTensor([32, 2, 16], r), k = randomTensor([32, 1, 16], r), v = randomTensor([32, 1, 16], r);
const cluster = await createCluster({ workers: 3, transport: 'inproc', maxQueue: 4 });
for (let i = 0; i < 3; i++) { await cluster.attention(q, k, v, { strategy: 'ring' }); console.log('seq ok', i); }
const settled = await Promise.allSettled(Array.from({ length: 8 }, () => cluster.attention(q, k, v, { strategy: 'ring' })));
console.log(settled.map(s => s.status + (s.reason?.code ?? '')));
await cluster.close();
