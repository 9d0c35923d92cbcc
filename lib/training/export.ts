/**
 * What a trained run leaves in its folder besides predictions: model/trained.{json,bin} (the
 * trained tail + head_dense with the standardisation folded in, Keras layout) and the tfjs-layers
 * model of tail + head (model/model.json + weights.bin).
 */
import { tf } from "../tf/backend.ts";
import type { HeadModel } from "./model.ts";
import type { Cut, Net } from "./steps.ts";
import { subgraph } from "../models/graph.ts";
import type { NetSpec, NetWeights } from "../models/spec.ts";
import { buildTfModel } from "../models/tfjs.ts";
import { saveWeights } from "../models/weights/io.ts";
import { type RunFolder, TFJS_WEIGHTS_FILE } from "../runs/mod.ts";
import { writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";

/** The trained weights: the tail's (phase 2) then head_dense with standardisation folded in. */
export function trainedWeights(model: HeadModel): NetWeights {
  const trained: NetWeights = model.tail ? model.getWeights() : new Map();
  trained.delete("head_dense");
  trained.set("head_dense", model.foldedHead());
  return trained;
}

/**
 * Saves the trained weights and the tfjs model into `run.modelDir`; returns the whole
 * classifier's weights (starting weights with the trained ones over them).
 */
export async function saveTrainedModel(
  run: RunFolder,
  net: Net,
  cut: Cut,
  model: HeadModel,
): Promise<NetWeights> {
  const trained = trainedWeights(model);
  await Deno.mkdir(run.modelDir, { recursive: true });
  await saveWeights(run.trainedWeightsStem, trained);
  const merged: NetWeights = new Map(net.weights.weights);
  for (const [k, v] of trained) merged.set(k, v);
  const inputs = cut.tail ? cut.frontier : [net.base.output];
  await saveTfjsModel(net.full, inputs, merged, run);
  return merged;
}

/** The run's tfjs-layers model (model.json + weights.bin) from `inputs` to head_dense. */
async function saveTfjsModel(
  full: NetSpec,
  inputs: string[],
  weights: NetWeights,
  run: RunFolder,
): Promise<void> {
  const spec = subgraph(full, inputs, ["head_dense"]);
  const model = buildTfModel(spec, weights, { trainable: false });
  try {
    await model.save(tf.io.withSaveHandler(async (artifacts) => {
      const { weightData, ...rest } = artifacts;
      const bytes = weightData instanceof ArrayBuffer
        ? new Uint8Array(weightData)
        : new Uint8Array(await new Blob(weightData as ArrayBuffer[]).arrayBuffer());
      await writeFileAtomic(run.tfjsWeightsPath, bytes);
      await writeJsonAtomic(run.tfjsModelPath, {
        modelTopology: rest.modelTopology,
        format: rest.format ?? "layers-model",
        generatedBy: rest.generatedBy,
        convertedBy: rest.convertedBy ?? null,
        weightsManifest: [{ paths: [TFJS_WEIGHTS_FILE], weights: rest.weightSpecs }],
      }, 1);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }));
  } finally {
    model.dispose();
  }
}
