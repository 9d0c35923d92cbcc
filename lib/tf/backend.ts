/**
 * tfjs backend selection: tfjs-node-gpu > tfjs-node (when the user installed them) > wasm > cpu.
 *
 * Every module that runs tfjs imports `tf` from here so one tfjs instance (and one registered
 * backend) is shared by models, training and Grad-CAM.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { join } from "node:path";
import { PROJECT_ROOT } from "../util/paths.ts";
import { EXTRA_WASM_KERNELS, registerWasmTrainingKernels } from "./wasm_kernels.ts";

export { tf };

// Production mode: no debug checks, and no "install tfjs-node" banner in logs and notebooks.
tf.env().set("PROD", true);

export type BackendPreference = "auto" | "tensorflow" | "wasm" | "cpu";

export interface BackendInfo {
  /** tfjs backend name: "tensorflow", "wasm" or "cpu". */
  name: string;
  /** What was tried and why this one was chosen. */
  detail: string;
}

let current: BackendInfo | null = null;

function wasmDistUrl(): string {
  const dir = join(
    PROJECT_ROOT,
    "node_modules",
    "@tensorflow",
    "tfjs-backend-wasm",
    "dist",
  );
  return new URL(`file://${dir}/`).href;
}

async function tryNative(): Promise<string | null> {
  // Optional native bindings: only when the user installed them (see README).
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    try {
      await import(pkg);
      if (await tf.setBackend("tensorflow")) return pkg;
    } catch {
      // not installed: fall through
    }
  }
  return null;
}

/** Selects and initialises the fastest available backend (idempotent). */
export async function initBackend(prefer: BackendPreference = "auto"): Promise<BackendInfo> {
  if (current && (prefer === "auto" || prefer === current.name)) return current;
  const tried: string[] = [];
  if (prefer === "auto" || prefer === "tensorflow") {
    const pkg = await tryNative();
    if (pkg) return (current = { name: "tensorflow", detail: `native bindings from ${pkg}` });
    tried.push("tfjs-node(-gpu) not installed");
  }
  if (prefer === "auto" || prefer === "wasm") {
    try {
      setWasmPaths(wasmDistUrl());
      registerWasmTrainingKernels();
      if (await tf.setBackend("wasm")) {
        await tf.ready();
        return (current = {
          name: "wasm",
          detail: [
            ...tried,
            `wasm (single-threaded, XNNPACK; cxr adds ${EXTRA_WASM_KERNELS.join(", ")})`,
          ].join("; "),
        });
      }
    } catch (e) {
      tried.push(`wasm failed: ${(e as Error).message}`);
    }
  }
  await tf.setBackend("cpu");
  await tf.ready();
  return (current = { name: "cpu", detail: [...tried, "cpu"].join("; ") });
}
