/**
 * A minimal protobuf writer for the part of onnx.proto that an exporter needs (ModelProto,
 * GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto). Field numbers follow
 * onnx/onnx.proto (IR version 8). Nested messages are kept as chunk lists so that large weight
 * tensors are copied once, when the model is finished.
 */

/** ONNX TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7, FLOAT16: 10 } as const;

/** Protobuf wire types. */
const VARINT = 0;
const FIXED32 = 5;
const LEN = 2;

/** Appends protobuf fields to a list of byte chunks. */
export class PbWriter {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    const bytes = Uint8Array.from(this.scratch);
    this.chunks.push(bytes);
    this.length += bytes.length;
    this.scratch = [];
  }

  private pushVarint(value: bigint | number): void {
    // int64 fields encode negatives as 10-byte two's complement varints.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.pushVarint((field << 3) | wire);
  }

  /** int32/int64/enum field. */
  int(field: number, value: number | bigint): this {
    this.tag(field, VARINT);
    this.pushVarint(value);
    return this;
  }

  /** float field (fixed32, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.scratch.push(...b);
    return this;
  }

  /** bytes field. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, LEN);
    this.pushVarint(value.length);
    this.flushScratch();
    if (value.length > 0) {
      this.chunks.push(value);
      this.length += value.length;
    }
    return this;
  }

  /** string field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** Packed repeated int64 field. */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new PbWriter();
    for (const v of values) inner.pushVarint(v);
    inner.flushScratch();
    return this.message(field, inner);
  }

  /** Embedded message field. */
  message(field: number, msg: PbWriter): this {
    msg.flushScratch();
    this.tag(field, LEN);
    this.pushVarint(msg.length);
    this.flushScratch();
    for (const c of msg.chunks) this.chunks.push(c);
    this.length += msg.length;
    return this;
  }

  /** The encoded message as one buffer. */
  finish(): Uint8Array {
    this.flushScratch();
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/** An initializer or constant tensor. */
export interface TensorValue {
  name?: string;
  dims: number[];
  dataType: number;
  /** Little-endian bytes of the elements. */
  raw: Uint8Array;
}

/** Float32 tensor (data copied into a little-endian byte view). */
export function floatTensor(name: string, dims: number[], data: Float32Array): TensorValue {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims, dataType: DataType.FLOAT, raw };
}

/** Int64 tensor. */
export function int64Tensor(name: string, dims: number[], data: readonly number[]): TensorValue {
  const arr = new BigInt64Array(data.map((v) => BigInt(v)));
  return { name, dims, dataType: DataType.INT64, raw: new Uint8Array(arr.buffer) };
}

/** TensorProto: dims=1, data_type=2, name=8, raw_data=9. */
export function encodeTensor(t: TensorValue): PbWriter {
  const w = new PbWriter();
  if (t.dims.length > 0) w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  if (t.name) w.string(8, t.name);
  w.bytes(9, t.raw);
  return w;
}

/** Node attribute values; arrays of numbers are INTS unless `floats` is used. */
export type AttributeValue =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] }
  | { t: TensorValue };

/** AttributeProto: name=1, f=2, i=3, s=4, t=5, floats=7, ints=8, type=20. */
function encodeAttribute(name: string, value: AttributeValue): PbWriter {
  const w = new PbWriter().string(1, name);
  if ("i" in value) w.int(3, value.i).int(20, 2);
  else if ("f" in value) w.float(2, value.f).int(20, 1);
  else if ("s" in value) w.string(4, value.s).int(20, 3);
  else if ("t" in value) w.message(5, encodeTensor(value.t)).int(20, 4);
  else if ("ints" in value) {
    for (const v of value.ints) w.int(8, v);
    w.int(20, 7);
  } else {
    for (const v of value.floats) w.float(7, v);
    w.int(20, 6);
  }
  return w;
}

export interface NodeDef {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: Record<string, AttributeValue>;
}

/** NodeProto: input=1, output=2, name=3, op_type=4, attribute=5. */
function encodeNode(n: NodeDef): PbWriter {
  const w = new PbWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(k, v));
  return w;
}

/** A graph input/output: dims are numbers or symbolic names (dynamic). */
export interface ValueInfo {
  name: string;
  elemType: number;
  dims: (number | string)[];
}

/** ValueInfoProto{name=1, type=2} > TypeProto{tensor_type=1} > {elem_type=1, shape=2} > dim=1. */
function encodeValueInfo(v: ValueInfo): PbWriter {
  const shape = new PbWriter();
  for (const d of v.dims) {
    const dim = new PbWriter();
    if (typeof d === "number") dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new PbWriter().int(1, v.elemType).message(2, shape);
  const type = new PbWriter().message(1, tensorType);
  return new PbWriter().string(1, v.name).message(2, type);
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: TensorValue[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export interface ModelDef {
  graph: GraphDef;
  opset: number;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

/**
 * ModelProto: ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7,
 * opset_import=8 (OperatorSetIdProto{domain=1, version=2}), metadata_props=14.
 * GraphProto: node=1, name=2, initializer=5, input=11, output=12.
 */
export function encodeModel(m: ModelDef): Uint8Array {
  const g = new PbWriter();
  for (const n of m.graph.nodes) g.message(1, encodeNode(n));
  g.string(2, m.graph.name);
  for (const t of m.graph.initializers) g.message(5, encodeTensor(t));
  for (const i of m.graph.inputs) g.message(11, encodeValueInfo(i));
  for (const o of m.graph.outputs) g.message(12, encodeValueInfo(o));

  const w = new PbWriter().int(1, m.irVersion ?? 8);
  w.string(2, m.producerName ?? "cxr");
  if (m.producerVersion) w.string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, g);
  w.message(8, new PbWriter().string(1, "").int(2, m.opset));
  for (const [key, value] of Object.entries(m.metadata ?? {})) {
    w.message(14, new PbWriter().string(1, key).string(2, value));
  }
  return w.finish();
}
