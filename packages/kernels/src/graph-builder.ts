import { ElemType, ModelProto, AttrType, type ElemTypeName } from './onnx-schema.js';

/** Integers encode as INT attributes; wrap a float that may be integral as `{ float: x }`. */
export type AttributeValue = number | string | number[] | { readonly float: number } | { readonly floats: number[] };

/** A dimension: a fixed size, or a name for a size known only at run time. */
export type Dim = number | string;

/** A constant folded into the model (weights, index tables). */
export interface Initializer {
  readonly type: ElemTypeName;
  readonly dims: readonly number[];
  readonly data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

/**
 * Builds an ONNX model in code: declare inputs, add nodes (each returns its output names), mark outputs, encode.
 * Names of intermediate values are generated, so graphs read like the math they compute:
 *   const scores = g.op('MatMul', [q, kT]);
 */
export class GraphBuilder {
  private readonly nodes: object[] = [];
  private readonly inputs: object[] = [];
  private readonly outputs: object[] = [];
  private readonly initializers: object[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  input(name: string, type: ElemTypeName, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemTypeName, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** Adds a node with one output and returns that output's name (`outputName` to pick it, e.g. a graph output). */
  op(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, options: { outputName?: string; domain?: string } = {}): string {
    return this.opMulti(opType, inputs, 1, attributes, { ...options, outputNames: options.outputName ? [options.outputName] : undefined })[0]!;
  }

  opMulti(
    opType: string,
    inputs: readonly string[],
    outputCount: number,
    attributes: Record<string, AttributeValue> = {},
    options: { outputNames?: string[] | undefined; domain?: string } = {},
  ): string[] {
    const outputs = options.outputNames ?? Array.from({ length: outputCount }, () => this.fresh(opType));
    this.nodes.push({
      input: [...inputs],
      output: outputs,
      name: this.fresh(`${opType}_node`),
      op_type: opType,
      domain: options.domain ?? '',
      attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
    });
    return outputs;
  }

  /** A constant tensor stored in the model; returns its name. */
  constant(init: Initializer, name = this.fresh('const')): string {
    const raw = new Uint8Array(init.data.buffer, init.data.byteOffset, init.data.byteLength);
    this.initializers.push({ name, dims: [...init.dims], data_type: ElemType[init.type], raw_data: raw });
    return name;
  }

  /** An int64 vector constant (shapes, axes). */
  ints(values: readonly number[]): string {
    return this.constant({ type: 'int64', dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
  }

  /** A float32 scalar constant. */
  scalar(value: number): string {
    return this.constant({ type: 'float', dims: [], data: Float32Array.of(value) });
  }

  toModelBytes(opset = 21, extraOpsets: Record<string, number> = {}): Uint8Array {
    const opsetImport = [{ domain: '', version: opset }, ...Object.entries(extraOpsets).map(([domain, version]) => ({ domain, version }))];
    const model = {
      ir_version: opset >= 23 ? 11 : 10,
      producer_name: 'seqpar',
      opset_import: opsetImport,
      graph: { name: this.name, node: this.nodes, input: this.inputs, output: this.outputs, initializer: this.initializers },
    };
    return ModelProto.encode(ModelProto.fromObject(model)).finish();
  }

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }
}

function valueInfo(name: string, type: ElemTypeName, dims: readonly Dim[]): object {
  const dim = dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: ElemType[type], shape: { dim } } } };
}

function attribute(name: string, value: AttributeValue): object {
  if (typeof value === 'number') return Number.isInteger(value) ? { name, i: value, type: AttrType.int } : { name, f: value, type: AttrType.float };
  if (typeof value === 'string') return { name, s: new TextEncoder().encode(value), type: AttrType.string };
  if (Array.isArray(value)) return { name, ints: value, type: AttrType.ints };
  if ('floats' in value) return { name, floats: value.floats, type: AttrType.floats };
  return { name, f: value.float, type: AttrType.float };
}
