import type { HardwareProfile } from './profiles.js';
import type { AttentionWorkload } from './workload.js';

/**
 * Context-parallel inference (Juravsky et al., Meta 2024, "Context Parallelism for Scalable Million-Token
 * Inference", §3.4): with T new tokens and P cached on N ranks, moving KV (pass-KV) hides behind compute when
 * T >= N·C·Hkv·e / (2·Hq·BW), and moves less than pass-Q when T/(T+P) >= 2·Hkv/Hq; otherwise the queries should
 * travel (pass-Q). C is the rank's attention FLOP/s, BW the link's bytes/s, e bytes per element.
 */
export function choosePassMode(w: AttentionWorkload, degree: number, profile: HardwareProfile): 'pass-kv' | 'pass-q' {
  const hiddenThreshold = (degree * profile.attentionFlops * w.kvHeads * w.bytesPerElement) / (2 * w.heads * profile.linkBandwidth);
  const missRate = w.seq / (w.seq + w.prefix);
  return w.seq >= hiddenThreshold || missRate >= (2 * w.kvHeads) / w.heads ? 'pass-kv' : 'pass-q';
}
