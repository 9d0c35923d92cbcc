/**
 * An MLflow model directory for an ONNX classifier, in the layout `mlflow.onnx.save_model`
 * writes (MLflow 2.x):
 *
 *   <dir>/MLmodel            YAML: artifact_path, flavors.onnx {data, providers, code},
 *                            flavors.python_function {loader_module: mlflow.onnx, data},
 *                            model_uuid, run_id, signature {inputs, outputs (JSON strings),
 *                            params}, metadata, utc_time_created
 *   <dir>/model.onnx         the model (byte for byte, or with only the chosen outputs)
 *   <dir>/requirements.txt   mlflow, onnx, onnxruntime
 *
 * Nothing is claimed that is not true: no `mlflow_version` (MLflow did not write it), no
 * `python_version`, onnx package version or python_env/conda files pinning a Python that was
 * never used (serve with `mlflow models serve --env-manager local`). The signature is read
 * from the ONNX graph's inputs/outputs when none is given.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PbWriter } from "../onnx/proto.ts";
import { toYaml, type YamlValue } from "./yaml.ts";

export interface TensorSpec {
  type: "tensor";
  "tensor-spec": { dtype: string; shape: number[] };
  name: string;
}

export interface OnnxGraphInfo {
  irVersion: number;
  opsetVersion: number | null;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

const ONNX_DTYPES: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
};

type Field = { no: number; wire: number; int: bigint; bytes?: Uint8Array };

/** Fields of one protobuf message (enough of the wire format for ONNX metadata). */
function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n, shift = 0n;
    while (true) {
      if (pos >= buf.length) throw new Error("onnx: truncated varint");
      const b = buf[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3, wire = key & 7;
    if (wire === 0) yield { no, wire, int: varint() };
    else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new Error("onnx: truncated field");
      yield { no, wire, int: 0n, bytes: buf.subarray(pos, pos + len) };
      pos += len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`onnx: unsupported wire type ${wire}`);
  }
}

const utf8 = new TextDecoder();

function valueInfo(buf: Uint8Array): TensorSpec {
  let name = "", dtype = "float32";
  const shape: number[] = [];
  for (const f of fields(buf)) {
    if (f.no === 1 && f.bytes) name = utf8.decode(f.bytes);
    if (f.no === 2 && f.bytes) {
      for (const t of fields(f.bytes)) {
        if (t.no !== 1 || !t.bytes) continue; // tensor_type
        for (const tt of fields(t.bytes)) {
          if (tt.no === 1) dtype = ONNX_DTYPES[Number(tt.int)] ?? `onnx_type_${tt.int}`;
          if (tt.no === 2 && tt.bytes) {
            for (const d of fields(tt.bytes)) {
              if (d.no !== 1 || !d.bytes) continue;
              let dim = -1; // dim_param (symbolic, e.g. batch) -> -1 like MLflow
              for (const dv of fields(d.bytes)) if (dv.no === 1) dim = Number(dv.int);
              shape.push(dim);
            }
          }
        }
      }
    }
  }
  return { type: "tensor", "tensor-spec": { dtype, shape }, name };
}

/** Re-emits a parsed field (varint or length-delimited: all ModelProto/GraphProto has). */
function copyField(w: PbWriter, f: Field): void {
  if (f.wire === 0) w.int(f.no, f.int);
  else if (f.bytes) w.bytes(f.no, f.bytes);
}

/**
 * The model with only the graph outputs named in `outputs` (old name -> exported name, in
 * that order); a renamed output is an Identity node feeding a new graph output.
 */
export function onnxWithOutputs(model: Uint8Array, outputs: Record<string, string>): Uint8Array {
  const graphOutputs = new Map<string, Uint8Array>();
  for (const f of fields(model)) {
    if (f.no !== 7 || !f.bytes) continue;
    for (const g of fields(f.bytes)) {
      if (g.no === 12 && g.bytes) graphOutputs.set(valueInfo(g.bytes).name, g.bytes);
    }
  }
  for (const name of Object.keys(outputs)) {
    if (!graphOutputs.has(name)) {
      throw new Error(
        `onnx: no graph output '${name}' (outputs: ${[...graphOutputs.keys()].join(", ")})`,
      );
    }
  }
  const rebuildGraph = (graph: Uint8Array): PbWriter => {
    const w = new PbWriter();
    for (const g of fields(graph)) {
      if (g.no !== 12) copyField(w, g);
    }
    for (const [from, to] of Object.entries(outputs)) {
      if (from !== to) {
        w.message(
          1,
          new PbWriter().string(1, from).string(2, to).string(3, `mlflow_output_${to}`)
            .string(4, "Identity"),
        );
      }
      const info = new PbWriter().string(1, to);
      for (const v of fields(graphOutputs.get(from)!)) if (v.no !== 1) copyField(info, v);
      w.message(12, info);
    }
    return w;
  };
  const out = new PbWriter();
  for (const f of fields(model)) {
    if (f.no === 7 && f.bytes) out.message(7, rebuildGraph(f.bytes));
    else copyField(out, f);
  }
  return out.finish();
}

/** IR version, default-domain opset and graph inputs/outputs (initializers excluded). */
export function readOnnxGraphInfo(model: Uint8Array): OnnxGraphInfo {
  let irVersion = 0;
  let opsetVersion: number | null = null;
  const inputs: TensorSpec[] = [], outputs: TensorSpec[] = [];
  const initializers = new Set<string>();
  let sawGraph = false;
  for (const f of fields(model)) {
    if (f.no === 1 && f.wire === 0) irVersion = Number(f.int);
    if (f.no === 8 && f.bytes) {
      let domain = "", version = 0;
      for (const o of fields(f.bytes)) {
        if (o.no === 1 && o.bytes) domain = utf8.decode(o.bytes);
        if (o.no === 2) version = Number(o.int);
      }
      if (domain === "" || domain === "ai.onnx") opsetVersion = version;
    }
    if (f.no === 7 && f.bytes) {
      sawGraph = true;
      for (const g of fields(f.bytes)) {
        if (g.no === 11 && g.bytes) inputs.push(valueInfo(g.bytes));
        if (g.no === 12 && g.bytes) outputs.push(valueInfo(g.bytes));
        if (g.no === 5 && g.bytes) {
          for (const t of fields(g.bytes)) {
            if (t.no === 8 && t.bytes) initializers.add(utf8.decode(t.bytes));
          }
        }
      }
    }
  }
  if (!sawGraph) throw new Error("onnx: no graph in model (is this an ONNX ModelProto?)");
  return {
    irVersion,
    opsetVersion,
    inputs: inputs.filter((i) => !initializers.has(i.name)),
    outputs,
  };
}

/** YAML-safe copy of metadata: nested maps and scalar lists kept, anything else as JSON text. */
function yamlSafe(value: unknown): YamlValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return value;
  }
  if (Array.isArray(value)) {
    return value.every((v) => v === null || ["string", "number", "boolean"].includes(typeof v))
      ? value as YamlValue[]
      : JSON.stringify(value);
  }
  if (typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, yamlSafe(v)]),
    );
  }
  return String(value);
}

function signatureYaml(signature: unknown): YamlValue {
  const sig = signature as { inputs?: unknown; outputs?: unknown; params?: unknown };
  const text = (v: unknown) =>
    v === undefined || v === null ? null : typeof v === "string" ? v : JSON.stringify(v);
  return { inputs: text(sig.inputs), outputs: text(sig.outputs), params: text(sig.params) };
}

/** `utc_time_created` in Python's `str(datetime.utcnow())` form. */
function utcNow(d = new Date()): string {
  return d.toISOString().replace("T", " ").replace("Z", "000");
}

export interface OnnxModelDir {
  dir: string;
  mlmodel: Record<string, YamlValue>;
  modelUuid: string;
}

/** Writes the model directory (see the header) for `onnxPath` into `dir`. */
export async function writeOnnxModelDir(
  onnxPath: string,
  dir: string,
  opts: {
    runId: string;
    artifactPath: string;
    signature?: unknown;
    metadata?: Record<string, unknown>;
    /** Graph outputs to keep (old name -> exported name); default all. */
    outputs?: Record<string, string>;
    /** When the model was logged (ms; default now). */
    createdAt?: number;
  },
): Promise<OnnxModelDir> {
  let bytes: Uint8Array = await Deno.readFile(onnxPath).catch((e) => {
    throw new Error(`cannot read ONNX model ${onnxPath}: ${e.message}`);
  });
  if (opts.outputs) bytes = onnxWithOutputs(bytes, opts.outputs);
  let signature = opts.signature;
  let info: OnnxGraphInfo | null = null;
  try {
    info = readOnnxGraphInfo(bytes);
  } catch (e) {
    if (signature === undefined) {
      throw new Error(`${onnxPath}: not a readable ONNX model (${(e as Error).message})`);
    }
  }
  if (signature === undefined && info) signature = { inputs: info.inputs, outputs: info.outputs };
  const modelUuid = crypto.randomUUID().replaceAll("-", "");
  const mlmodel: Record<string, YamlValue> = {
    artifact_path: opts.artifactPath,
    flavors: {
      onnx: {
        code: null,
        data: "model.onnx",
        providers: ["CUDAExecutionProvider", "CPUExecutionProvider"],
      },
      python_function: { data: "model.onnx", loader_module: "mlflow.onnx" },
    },
    model_uuid: modelUuid,
    run_id: opts.runId,
    utc_time_created: utcNow(new Date(opts.createdAt ?? Date.now())),
  };
  if (signature !== undefined) mlmodel.signature = signatureYaml(signature);
  const metadata = { ...(opts.metadata ?? {}) };
  if (info) {
    metadata.onnx_ir_version ??= info.irVersion;
    if (info.opsetVersion !== null) metadata.onnx_opset ??= info.opsetVersion;
  }
  mlmodel.metadata = yamlSafe(metadata);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "model.onnx"), bytes);
  await writeFile(join(dir, "MLmodel"), toYaml(mlmodel));
  await writeFile(join(dir, "requirements.txt"), "mlflow\nonnx\nonnxruntime\n");
  return { dir, mlmodel, modelUuid };
}

/** The entry MLflow appends to the run tag `mlflow.log-model.history` (shows in the UI). */
export function modelHistoryEntry(model: OnnxModelDir): Record<string, unknown> {
  const m = model.mlmodel;
  return {
    run_id: m.run_id,
    artifact_path: m.artifact_path,
    utc_time_created: m.utc_time_created,
    flavors: m.flavors,
    model_uuid: m.model_uuid,
  };
}
