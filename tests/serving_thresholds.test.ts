/**
 * Threshold profiles in the API: every answer names the profile that produced its label
 * (`threshold.profile`), `?threshold=site:<name>` switches it per request, `serve --threshold`
 * (defaultThreshold) sets the default, and an unknown profile is a clear 400.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import type { Classifier } from "../lib/inference/classifier.ts";
import { type RunningServer, startServer } from "../lib/serving/server.ts";
import { saveSiteProfile } from "../lib/evaluation/profiles.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

/** P(pneumonia) = 0.4 for every image, between the two profiles' thresholds. */
function fake(id: string, runDir: string | null): Classifier {
  return {
    id,
    net: "densenet121",
    threshold: { method: "sens95", value: 0.5, val_sensitivity: 0.95, val_specificity: 0.7 },
    weights: { label: "formula (not ImageNet)", md5: "0123456789abcdef", isImageNet: false },
    gradcamLayer: null,
    runDir,
    meta: {} as Classifier["meta"],
    predict: (_x: Float32Array, n: number) =>
      Promise.resolve({ prob: new Float32Array(n).fill(0.4) }),
    async close() {},
  } as Classifier;
}

async function post(s: RunningServer, query: string): Promise<[number, Json]> {
  const png = await sharp({
    create: { width: 64, height: 64, channels: 3, background: { r: 90, g: 90, b: 90 } },
  }).png().toBuffer();
  const res = await fetch(`${s.url}/v1/predict${query}`, {
    method: "POST",
    headers: { "content-type": "image/png" },
    body: new Uint8Array(png),
  });
  return [res.status, await res.json()];
}

Deno.test({
  name: "API: threshold profiles per request and by default, named in every answer",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cxr_api_profiles_" });
    try {
      await saveSiteProfile(dir, {
        name: "site:low",
        value: 0.3,
        method: "target-sensitivity",
        targetSensitivity: 0.95,
        sensitivity: 0.96,
        specificity: 0.6,
        data: {
          path: "/site",
          sha256: "ab".repeat(32),
          n: 200,
          positives: 100,
          negatives: 100,
          patients: null,
        },
        warnings: [],
        createdAt: "2026-01-01T00:00:00Z",
      });
      for (const defaultThreshold of [undefined, "site:low"]) {
        const server = await startServer({
          classifiers: [fake("calibrated", dir), fake("plain", null)],
          port: 0,
          defaultThreshold,
          guard: null,
        });
        try {
          await server.handler.ready; // the profiles are read from disk as the models load
          const models: Json = await (await fetch(`${server.url}/v1/models`)).json();
          assert.deepEqual(models.models[0].thresholdProfiles, ["validation", "site:low"]);
          assert.deepEqual(models.models[1].thresholdProfiles, ["validation"]);
          // Default: validation (0.5 -> NORMAL), or site:low where the model has it (0.3 -> PNEUMONIA).
          const [st, body] = await post(server, "?force=true");
          assert.deepEqual(st, 200, JSON.stringify(body));
          const [cal, plain] = body.results;
          if (!defaultThreshold) {
            assert.deepEqual([cal.label, cal.threshold.profile, cal.threshold.value], [
              "NORMAL",
              "validation",
              0.5,
            ]);
          } else {
            assert.deepEqual([cal.label, cal.threshold.profile, cal.threshold.value], [
              "PNEUMONIA",
              "site:low",
              0.3,
            ]);
            assert.deepEqual(cal.threshold.site.n, 200);
          }
          assert.deepEqual([plain.label, plain.threshold.profile], ["NORMAL", "validation"]);
          // Per request.
          const [s2, b2] = await post(server, "?model=calibrated&threshold=site:low&force=true");
          assert.deepEqual(s2, 200, JSON.stringify(b2));
          assert.deepEqual([b2.results[0].label, b2.results[0].threshold.profile], [
            "PNEUMONIA",
            "site:low",
          ]);
          const [s3, b3] = await post(server, "?model=calibrated&threshold=validation&force=true");
          assert.deepEqual([s3, b3.results[0].threshold.profile, b3.results[0].label], [
            200,
            "validation",
            "NORMAL",
          ]);
          // A profile a selected model lacks: 400 naming what it has.
          const [s4, b4] = await post(server, "?threshold=site:low&force=true");
          assert.deepEqual([s4, b4.error.code], [400, "unknown_threshold_profile"]);
          assert.ok(b4.error.message.includes("plain") && b4.error.message.includes("validation"));
        } finally {
          await server.close();
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
