/**
 * An MLflow model directory for an ONNX classifier, as `mlflow.onnx.save_model` writes it:
 *
 *   <dir>/MLmodel            YAML: artifact_path, flavors.onnx {data, onnx_version, providers,
 *                            code}, flavors.python_function {loader_module: mlflow.onnx, data,
 *                            env, python_version}, mlflow_version, model_uuid, run_id,
 *                            signature {inputs, outputs (JSON strings), params}, metadata,
 *                            utc_time_created
 *   <dir>/model.onnx         the model, copied byte for byte
 *   <dir>/requirements.txt, python_env.yaml, conda.yaml   for `mlflow models serve`
 *
 * The signature is read from the ONNX graph's inputs/outputs when none is given.
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { toYaml, type YamlValue } from "./yaml.ts";

/** The MLflow release whose MLmodel layout this follows (written as `mlflow_version`). */
export const MLMODEL_MLFLOW_VERSION = "2.16.0";
/** onnx package version recorded in the flavor (any onnx >= 1.8 reads opset 13 models). */
export const MLMODEL_ONNX_VERSION = "1.16.2";
export const MODEL_PYTHON_VERSION = "3.10";

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
    /** When the model was logged (ms; default now). */
    createdAt?: number;
  },
): Promise<OnnxModelDir> {
  const bytes = await Deno.readFile(onnxPath).catch((e) => {
    throw new Error(`cannot read ONNX model ${onnxPath}: ${e.message}`);
  });
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
        onnx_version: MLMODEL_ONNX_VERSION,
        providers: ["CUDAExecutionProvider", "CPUExecutionProvider"],
      },
      python_function: {
        data: "model.onnx",
        env: { conda: "conda.yaml", virtualenv: "python_env.yaml" },
        loader_module: "mlflow.onnx",
        python_version: MODEL_PYTHON_VERSION,
      },
    },
    mlflow_version: MLMODEL_MLFLOW_VERSION,
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
  await copyFile(onnxPath, join(dir, "model.onnx"));
  await writeFile(join(dir, "MLmodel"), toYaml(mlmodel));
  const reqs = ["mlflow", "onnx", "onnxruntime"];
  await writeFile(join(dir, "requirements.txt"), reqs.join("\n") + "\n");
  await writeFile(
    join(dir, "python_env.yaml"),
    `python: ${MODEL_PYTHON_VERSION}\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n`,
  );
  await writeFile(
    join(dir, "conda.yaml"),
    `channels:\n- conda-forge\ndependencies:\n- python=${MODEL_PYTHON_VERSION}\n- pip\n- pip:\n` +
      reqs.map((r) => `  - ${r}\n`).join("") + "name: mlflow-env\n",
  );
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
    mlflow_version: m.mlflow_version,
  };
}
