/**
 * The classifiers a server answers with: loaded in the background (the server listens at
 * once and says "loading" until they settle), chosen per request by id or net name.
 */
import type { Classifier } from "../inference/classifier.ts";
import { listSiteProfiles, type ThresholdProfile } from "../evaluation/profiles.ts";
import { displayName } from "../models/registry.ts";
import { HttpError } from "./errors.ts";

export interface ModelEntry {
  classifier: Classifier;
  displayName: string;
  /** Threshold profiles of the run: validation first, then site:<name> (thresholds.json). */
  profiles: ThresholdProfile[];
}

/**
 * The `threshold` block of an answer: the operating point that produced the label and the
 * profile it comes from (`profile`: "validation" or "site:<name>"). Site profiles add what
 * they were fitted on.
 */
export function thresholdOf(m: ModelEntry, profile: ThresholdProfile) {
  const c = m.classifier;
  if (profile.name === "validation") return { ...c.threshold, profile: "validation" };
  return {
    method: profile.method,
    value: profile.value,
    val_sensitivity: null,
    val_specificity: null,
    profile: profile.name,
    site: {
      sensitivity: profile.sensitivity,
      specificity: profile.specificity,
      ci: profile.ci ?? null,
      n: profile.data?.n ?? null,
      positives: profile.data?.positives ?? null,
      negatives: profile.data?.negatives ?? null,
      sha256: profile.data?.sha256 ?? null,
      createdAt: profile.createdAt ?? null,
      warnings: profile.warnings ?? [],
    },
  };
}

/** Validation profile straight from classifier.json (runs without a folder, fakes in tests). */
function validationOf(c: Classifier): ThresholdProfile {
  return {
    name: "validation",
    value: c.threshold.value,
    method: c.threshold.method,
    sensitivity: c.threshold.val_sensitivity,
    specificity: c.threshold.val_specificity,
  };
}

async function profilesOf(c: Classifier): Promise<ThresholdProfile[]> {
  if (!c.runDir) return [validationOf(c)];
  try {
    return [validationOf(c), ...await listSiteProfiles(c.runDir)];
  } catch (e) {
    console.error(
      `warning: site threshold profiles of ${c.id} not loaded: ${(e as Error).message}`,
    );
    return [validationOf(c)];
  }
}

/** The weights block of every model description: `notImageNet` spelled out for the page. */
export function weightsOf(c: Classifier) {
  return { ...c.weights, notImageNet: !c.weights.isImageNet };
}

/** The normalisation a model's input goes through; an ensemble of mixed members: "per member". */
export function intensityOf(c: Classifier): string {
  return c.intensity ?? (c.meta?.members ? "per member" : "off");
}

/** True for demo packages never trained on labelled images (their outputs mean nothing). */
export function untrainedOf(c: Classifier): boolean {
  return c.meta?.untrained === true;
}

export type LoadState =
  | { status: "loading" }
  | { status: "failed"; error: string }
  | { status: "no_models" }
  | { status: "ready"; models: number };

export class ModelRegistry {
  #models: ModelEntry[] = [];
  #error: string | null = null;
  #loaded = false;
  /** Settles when the classifiers are loaded (or failed to load). */
  readonly ready: Promise<void>;

  /** Profile applied when a request names none (`serve --threshold`); default validation. */
  readonly defaultThreshold: string;

  constructor(classifiers: Classifier[] | Promise<Classifier[]>, defaultThreshold = "validation") {
    this.defaultThreshold = defaultThreshold;
    this.ready = Promise.resolve(classifiers).then(
      async (list) => {
        this.#models = await Promise.all(list.map(async (c) => ({
          classifier: c,
          displayName: displayName(c.net),
          profiles: await profilesOf(c),
        })));
        this.#loaded = true;
      },
      (e) => {
        this.#error = e instanceof Error ? e.message : String(e);
        this.#loaded = true;
      },
    );
  }

  get state(): LoadState {
    if (!this.#loaded) return { status: "loading" };
    if (this.#error !== null) return { status: "failed", error: this.#error };
    if (this.#models.length === 0) return { status: "no_models" };
    return { status: "ready", models: this.#models.length };
  }

  /** Models that can no longer answer (their worker died twice) and why: /readyz lists them. */
  unavailable(): { id: string; error: string }[] {
    return this.#models.flatMap(({ classifier: c }) => {
      const why = c.unavailable?.();
      return why ? [{ id: c.id, error: why }] : [];
    });
  }

  /** What /v1/models lists. */
  describe() {
    return this.#models.map((m) => ({
      id: m.classifier.id,
      net: m.classifier.net,
      displayName: m.displayName,
      threshold: thresholdOf(m, this.profile(m, null)),
      thresholdProfiles: m.profiles.map((p) => p.name),
      ...this.#describeRest(m.classifier),
    }));
  }

  /**
   * The profile for a request's `?threshold=` (null: the server default). A profile named in
   * the request must exist for every selected model (400 otherwise); the server default falls
   * back to validation for a model calibrated without it, and the answer says so.
   */
  profile(m: ModelEntry, requested: string | null): ThresholdProfile {
    const name = requested || this.defaultThreshold;
    const full = name === "validation" || name.startsWith("site:") ? name : `site:${name}`;
    const hit = m.profiles.find((p) => p.name === full);
    if (hit) return hit;
    if (!requested) return m.profiles[0];
    throw new HttpError(
      400,
      "unknown_threshold_profile",
      `model ${m.classifier.id} has no threshold profile ${JSON.stringify(requested)}; it has ${
        m.profiles.map((p) => p.name).join(", ")
      }`,
    );
  }

  #describeRest(c: Classifier) {
    return {
      weights: weightsOf(c),
      untrained: untrainedOf(c),
      gradcam: c.gradcamLayer !== null,
      gradcamLayer: c.gradcamLayer,
      intensity: intensityOf(c),
      ...(c.meta?.members ? { members: c.meta.members, combine: c.meta.combine } : {}),
    };
  }

  /** The models a `?model=a,b` parameter names (ids or net names); all when absent. */
  select(param: string | null): ModelEntry[] {
    const state = this.state;
    if (state.status !== "ready") {
      throw new HttpError(
        503,
        "not_ready",
        state.status === "failed"
          ? `models failed to load: ${state.error}`
          : "no model loaded yet; retry shortly",
      );
    }
    if (!param) return this.#models;
    const picked: ModelEntry[] = [];
    for (const w of param.split(",").map((s) => s.trim()).filter(Boolean)) {
      const hits = this.#models.filter((m) =>
        m.classifier.id === w || m.classifier.net === w.toLowerCase()
      );
      if (hits.length === 0) {
        const loaded = this.#models.map((m) => `${m.classifier.id} (${m.classifier.net})`);
        throw new HttpError(
          404,
          "unknown_model",
          `unknown model ${JSON.stringify(w)}; loaded: ${loaded.join(", ")}`,
        );
      }
      for (const h of hits) if (!picked.includes(h)) picked.push(h);
    }
    return picked;
  }
}
