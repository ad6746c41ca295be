import type { ResidentLayout, WireTensor } from './compute-protocol.js';

type Storage = Float32Array | Int32Array;

interface Resident {
  readonly layout: ResidentLayout;
  readonly data: Storage;
}

/**
 * Tensors a compute thread keeps between runs, by name: a rank's KV cache share stays on the thread that attends
 * over it, and each decode step sends only its new rows. Rows arrive sequence-major [t, groups, width], as graphs
 * produce K and V, and are scattered into their groups, so a graph reads each group's rows contiguously without
 * transposing the cache:
 *
 *   [groups, capacity, width]
 *   group 0: | row 0 | row 1 | ... | row n-1 | fill ... fill |
 *   group 1: | row 0 | row 1 | ... | row n-1 | fill ... fill |
 *
 * A write that fails leaves the tensor unusable until dropped, so a run queued after it cannot read stale rows.
 */
export class ResidentTensors {
  private readonly tensors = new Map<string, Resident>();
  private readonly broken = new Map<string, string>();

  writeRows(name: string, layout: ResidentLayout, at: number, rows: WireTensor): void {
    try {
      const target = this.ensure(name, layout);
      const { groups, width, capacity } = layout;
      const count = rows.dims[0] ?? 0;
      if (rows.type !== layout.type || rows.data.length !== count * groups * width) {
        throw new Error(`rows for '${name}' must be ${layout.type} [t, ${groups}, ${width}], got ${rows.type} [${rows.dims.join(', ')}]`);
      }
      if (!Number.isInteger(at) || at < 0 || at + count > capacity) throw new Error(`rows [${at}, ${at + count}) do not fit '${name}' (capacity ${capacity})`);
      scatterRows(rows.data as Storage, target.data, layout, at, count);
    } catch (error) {
      this.broken.set(name, (error as Error).message);
      throw error;
    }
  }

  /** The whole tensor as a feed of `dims`, which must cover it exactly. */
  feed(name: string, dims: readonly number[]): Storage {
    const failed = this.broken.get(name);
    if (failed !== undefined) throw new Error(`resident tensor '${name}' is unusable after a failed write: ${failed}`);
    const resident = this.tensors.get(name);
    if (!resident) throw new Error(`no resident tensor '${name}'`);
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== resident.data.length) throw new Error(`resident tensor '${name}' has ${resident.data.length} elements, not [${dims.join(', ')}]`);
    return resident.data;
  }

  drop(name: string): void {
    this.tensors.delete(name);
    this.broken.delete(name);
  }

  /** The named tensor with at least `layout.capacity` rows, grown (rows kept) or created as asked. */
  private ensure(name: string, layout: ResidentLayout): Resident {
    const existing = this.tensors.get(name);
    if (existing) {
      const old = existing.layout;
      if (old.type !== layout.type || old.groups !== layout.groups || old.width !== layout.width) {
        throw new Error(`resident tensor '${name}' is ${describe(old)}, not ${describe(layout)}`);
      }
      if (old.capacity >= layout.capacity) return existing;
    }
    const { groups, width, capacity } = layout;
    const data = layout.type === 'float32' ? new Float32Array(groups * capacity * width) : new Int32Array(groups * capacity * width);
    data.fill(layout.fill);
    if (existing) {
      const [oldSize, newSize] = [existing.layout.capacity * width, capacity * width];
      for (let g = 0; g < groups; g++) data.set(existing.data.subarray(g * oldSize, (g + 1) * oldSize), g * newSize);
    }
    const resident = { layout, data };
    this.tensors.set(name, resident);
    return resident;
  }
}

/** Source rows [count, groups, width] into `target` [groups, capacity, width] from row `at`. */
function scatterRows(source: Storage, target: Storage, { groups, width, capacity }: ResidentLayout, at: number, count: number): void {
  for (let t = 0; t < count; t++) {
    for (let g = 0; g < groups; g++) {
      const from = (t * groups + g) * width;
      target.set(source.subarray(from, from + width), (g * capacity + at + t) * width);
    }
  }
}

const describe = (l: ResidentLayout): string => `${l.type} [${l.groups}, *, ${l.width}]`;
