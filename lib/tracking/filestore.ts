/**
 * Server-less tracking: runs written straight into MLflow's file-store layout, so that
 * `mlflow ui --backend-store-uri ./outputs/mlruns` shows them. What is written (following
 * mlflow/store/tracking/file_store.py, MLflow 2.x):
 *
 *   <root>/.trash/                        (empty; MLflow expects it)
 *   <root>/0/meta.yaml                    the Default experiment, created with the root
 *   <root>/<exp_id>/meta.yaml             artifact_location: 'file://<root>/<exp_id>'
 *                                         creation_time: <ms>, experiment_id: '<exp_id>',
 *                                         last_update_time: <ms>, lifecycle_stage: 'active',
 *                                         name: '<experiment name>'
 *   <root>/<exp_id>/<run_id>/meta.yaml    artifact_uri: 'file://<root>/<exp_id>/<run_id>/artifacts'
 *                                         deleted_time: null, end_time: <ms> | null,
 *                                         entry_point_name: '', experiment_id: '<exp_id>',
 *                                         lifecycle_stage: 'active', run_id = run_uuid: 32 hex,
 *                                         run_name: '<name>', source_name: '', source_type: 4
 *                                         (LOCAL), source_version: '', start_time: <ms>,
 *                                         status: 1 RUNNING | 3 FINISHED | 4 FAILED | 5 KILLED,
 *                                         tags: [], user_id: '<user>'
 *   <root>/<exp_id>/<run_id>/metrics/<key>   one line per value: "<timestamp_ms> <value> <step>"
 *   <root>/<exp_id>/<run_id>/params/<key>    the value, no newline (immutable once written)
 *   <root>/<exp_id>/<run_id>/tags/<key>      the value, no newline; always mlflow.runName,
 *                                            mlflow.user, mlflow.source.name/type (+git.commit)
 *   <root>/<exp_id>/<run_id>/artifacts/...   copies of logged files; models as MLflow model dirs
 *
 * Keys may contain "/" (sub-folders, as MLflow does). Experiment ids are random 63-bit
 * integers like MLflow's `_generate_unique_integer_id`; run ids are uuid4 hex.
 */
import { appendFile, cp, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseFlatYaml, toYaml, type YamlValue } from "./yaml.ts";
import { type Batch, paramString, tagString, validateKey, validateMetric } from "./validate.ts";
import { RUN_STATUS_CODE, type RunStatusName } from "./types.ts";
import { joinArtifactPath, listFiles } from "./rest.ts";
import { exists } from "../util/fs.ts";

export const DEFAULT_EXPERIMENT_ID = "0";

function fileUri(path: string): string {
  return pathToFileURL(resolve(path)).href;
}

/** Python's str(float): 1 -> "1.0", NaN -> "nan", Infinity -> "inf". */
export function pythonFloat(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  return Number.isInteger(v) && Math.abs(v) < 1e16 ? `${v}.0` : String(v);
}

function randomExperimentId(): string {
  const [n] = crypto.getRandomValues(new BigUint64Array(1));
  return String((n & ((1n << 63n) - 1n)) || 1n);
}

export interface FileRun {
  runId: string;
  experimentId: string;
  runDir: string;
}

export class MlflowFileStore {
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  /** Creates the root with .trash and the Default experiment (id 0) when missing. */
  async ensureRoot(): Promise<void> {
    await mkdir(join(this.root, ".trash"), { recursive: true });
    if (!(await exists(join(this.root, DEFAULT_EXPERIMENT_ID, "meta.yaml")))) {
      await this.#writeExperiment(DEFAULT_EXPERIMENT_ID, "Default");
    }
  }

  async #writeExperiment(id: string, name: string): Promise<void> {
    const now = Date.now();
    await mkdir(join(this.root, id), { recursive: true });
    await writeFile(
      join(this.root, id, "meta.yaml"),
      toYaml({
        artifact_location: fileUri(join(this.root, id)),
        creation_time: now,
        experiment_id: id,
        last_update_time: now,
        lifecycle_stage: "active",
        name,
      }),
    );
  }

  async #experiments(): Promise<{ id: string; meta: Record<string, YamlValue> }[]> {
    const out = [];
    for (const e of await readdir(this.root, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith(".")) continue;
      const file = join(this.root, e.name, "meta.yaml");
      if (!(await exists(file))) continue;
      out.push({ id: e.name, meta: parseFlatYaml(await readFile(file, "utf8"), file) });
    }
    return out;
  }

  async getOrCreateExperiment(name: string): Promise<string> {
    if (name === "") throw new Error("Invalid experiment name: empty");
    await this.ensureRoot();
    const found = (await this.#experiments()).find((e) =>
      e.meta.name === name && e.meta.lifecycle_stage === "active"
    );
    if (found) return found.id;
    let id = randomExperimentId();
    while (await exists(join(this.root, id))) id = randomExperimentId();
    await this.#writeExperiment(id, name);
    return id;
  }

  async createRun(opts: {
    experimentId: string;
    runName: string;
    startTime: number;
    userId: string;
    tags: Record<string, string>;
  }): Promise<FileRun> {
    const runId = crypto.randomUUID().replaceAll("-", "");
    const runDir = join(this.root, opts.experimentId, runId);
    await mkdir(join(runDir, "metrics"), { recursive: true });
    await mkdir(join(runDir, "params"), { recursive: true });
    await mkdir(join(runDir, "artifacts"), { recursive: true });
    await mkdir(join(runDir, "tags"), { recursive: true });
    await this.writeRunMeta(runDir, {
      artifact_uri: fileUri(join(runDir, "artifacts")),
      deleted_time: null,
      end_time: null,
      entry_point_name: "",
      experiment_id: opts.experimentId,
      lifecycle_stage: "active",
      run_id: runId,
      run_name: opts.runName,
      run_uuid: runId,
      source_name: "",
      source_type: 4,
      source_version: "",
      start_time: opts.startTime,
      status: RUN_STATUS_CODE.RUNNING,
      tags: [],
      user_id: opts.userId,
    });
    const run = { runId, experimentId: opts.experimentId, runDir };
    await this.logBatch(run, {
      metrics: [],
      params: [],
      tags: Object.entries({ ...opts.tags, "mlflow.runName": opts.runName })
        .map(([key, value]) => ({ key, value })),
    });
    return run;
  }

  /** The run with this id in any active experiment, or null. */
  async findRun(runId: string): Promise<FileRun | null> {
    if (!/^[a-zA-Z0-9][\w-]{0,255}$/.test(runId)) return null;
    if (!(await exists(this.root))) return null;
    for (const e of await this.#experiments()) {
      const runDir = join(this.root, e.id, runId);
      if (await exists(join(runDir, "meta.yaml"))) return { runId, experimentId: e.id, runDir };
    }
    return null;
  }

  async readRunMeta(runDir: string): Promise<Record<string, YamlValue>> {
    const file = join(runDir, "meta.yaml");
    return parseFlatYaml(await readFile(file, "utf8"), file);
  }

  async writeRunMeta(runDir: string, meta: Record<string, YamlValue>): Promise<void> {
    await writeFile(join(runDir, "meta.yaml"), toYaml(meta));
  }

  async setStatus(run: FileRun, status: RunStatusName, endTime: number | null): Promise<void> {
    const meta = await this.readRunMeta(run.runDir);
    meta.status = RUN_STATUS_CODE[status];
    meta.end_time = endTime;
    await this.writeRunMeta(run.runDir, meta);
  }

  /** Params (immutable: a different value for a logged key is an error), metrics, tags. */
  async logBatch(run: FileRun, batch: Batch): Promise<void> {
    for (const p of batch.params) {
      validateKey("param", p.key);
      const file = join(run.runDir, "params", p.key);
      const value = paramString(p.value);
      if (await exists(file)) {
        const old = await readFile(file, "utf8");
        if (old !== value) {
          throw new Error(
            `Changing param values is not allowed. Param with key='${p.key}' was already ` +
              `logged with value='${old}' for run ID='${run.runId}'. Attempted logging new ` +
              `value '${value}'.`,
          );
        }
        continue;
      }
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, value);
    }
    const lines = new Map<string, string[]>();
    for (const m of batch.metrics) {
      validateMetric(m.key, m.value, m.step, m.timestamp);
      const l = lines.get(m.key) ?? [];
      l.push(`${m.timestamp} ${pythonFloat(m.value)} ${m.step}\n`);
      lines.set(m.key, l);
    }
    for (const [key, l] of lines) {
      const file = join(run.runDir, "metrics", key);
      await mkdir(dirname(file), { recursive: true });
      await appendFile(file, l.join(""));
    }
    for (const t of batch.tags) {
      validateKey("tag", t.key);
      const file = join(run.runDir, "tags", t.key);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, tagString(t.value));
      if (t.key === "mlflow.runName") {
        const meta = await this.readRunMeta(run.runDir);
        if (meta.run_name !== t.value) {
          meta.run_name = t.value;
          await this.writeRunMeta(run.runDir, meta);
        }
      }
    }
  }

  async readTag(run: FileRun, key: string): Promise<string | null> {
    return await readFile(join(run.runDir, "tags", key), "utf8").catch(() => null);
  }

  /** Copies a file to artifacts/<artifactPath>/<name>, a directory's tree under <artifactPath>/. */
  async copyArtifact(run: FileRun, localPath: string, artifactPath: string): Promise<void> {
    const files = await listFiles(localPath); // clear error when missing
    const dest = join(run.runDir, "artifacts", joinArtifactPath(artifactPath));
    await mkdir(dest, { recursive: true });
    if (files.length === 1 && files[0].abs === localPath) {
      await cp(localPath, join(dest, basename(localPath)));
    } else await cp(localPath, dest, { recursive: true });
  }
}
