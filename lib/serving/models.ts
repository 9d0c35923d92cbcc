/**
 * The classifiers a server answers with: loaded in the background (the server listens at
 * once and says "loading" until they settle), chosen per request by id or net name.
 */
import type { Classifier } from "../inference/classifier.ts";
import { displayName } from "../models/registry.ts";
import { HttpError } from "./errors.ts";

export interface ModelEntry {
  classifier: Classifier;
  displayName: string;
}

/** The weights block of every model description: `notImageNet` spelled out for the page. */
export function weightsOf(c: Classifier) {
  return { ...c.weights, notImageNet: !c.weights.isImageNet };
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

  constructor(classifiers: Classifier[] | Promise<Classifier[]>) {
    this.ready = Promise.resolve(classifiers).then(
      (list) => {
        this.#models = list.map((c) => ({
          classifier: c,
          displayName: displayName(c.net),
        }));
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

  /** What /v1/models lists. */
  describe() {
    return this.#models.map(({ classifier: c, displayName }) => ({
      id: c.id,
      net: c.net,
      displayName,
      threshold: c.threshold,
      weights: weightsOf(c),
      untrained: untrainedOf(c),
      gradcam: c.gradcamLayer !== null,
      gradcamLayer: c.gradcamLayer,
      intensity: c.intensity ?? "off",
      ...(c.meta?.members ? { members: c.meta.members, combine: c.meta.combine } : {}),
    }));
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
