/** The options of issue 17 in the config and flags: defaults, validation, run ids. */
import assert from "node:assert/strict";
import { resolveConfig, runIdFor } from "../lib/training/config.ts";
import { DEFAULT_INTENSITY } from "../lib/data/intensity.ts";
import { augmentPolicy } from "../lib/features/views.ts";
import { configFromFlags } from "../lib/cli/train_flags.ts";

Deno.test("intensity and augmentation options: defaults, flags, errors, run ids", () => {
  const base = resolveConfig({ net: "densenet121", weights: "formula", profile: "full" });
  assert.equal(base.intensity, DEFAULT_INTENSITY);
  assert.equal(DEFAULT_INTENSITY, "equalize");
  assert.equal(base.augmentViews, 1, "the full profile draws one augmented view per image");
  assert.equal(resolveConfig({ net: "vgg16", profile: "quick" }).augmentViews, 0);
  assert.equal(base.augmentFlip, false);
  // At their "off" values the options leave the run id of older runs unchanged...
  const off = {
    net: "densenet121",
    weights: "formula",
    profile: "full",
    intensity: "off",
  } as const;
  const old = resolveConfig({ ...off, augmentViews: 0 });
  // The id this config had before these options existed (train-all full, formula weights).
  assert.equal(runIdFor(old), "densenet121-full-formula-patient-555cd2a4");
  // ...and each one moves it when set.
  const ids = new Set([
    runIdFor(old),
    runIdFor({ ...old, intensity: "clahe" }),
    runIdFor(base), // the default, equalize
    runIdFor({ ...old, augmentViews: 2 }),
    runIdFor({ ...old, augmentViews: 2, augmentFlip: true }),
  ]);
  // The augmentation policy is part of the id: views drawn under another policy never mix.
  ids.add(runIdFor({ ...old, augmentViews: 1 }));
  assert.equal(ids.size, 6);
  const policy = JSON.stringify(augmentPolicy(false));
  assert.ok(policy.includes('"range":[1,1.5]'), policy);

  const flags = configFromFlags({
    intensity: "clahe",
    "augment-views": "3",
    "augment-flip": true,
  });
  assert.deepEqual(
    [flags.intensity, flags.augmentViews, flags.augmentFlip],
    ["clahe", 3, true],
  );
  assert.throws(() => configFromFlags({ intensity: "hist" }), /--intensity: expected one of/);
  assert.throws(() => configFromFlags({ "augment-views": "1.5" }), /--augment-views/);
  assert.throws(
    () => resolveConfig({ net: "vgg16", intensity: "x" as "off" }),
    /intensity must be one of off \| equalize \| clahe/,
  );
});
