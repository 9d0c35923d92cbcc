/** The options of issue 17 in the config and flags: defaults, validation, run ids. */
import assert from "node:assert/strict";
import { resolveConfig, runIdFor } from "../lib/training/config.ts";
import { configFromFlags } from "../lib/cli/train_flags.ts";

Deno.test("intensity and augmentation options: defaults, flags, errors, run ids", () => {
  const base = resolveConfig({ net: "densenet121", weights: "formula", profile: "full" });
  assert.equal(base.intensity, "off");
  assert.equal(base.augmentViews, 0);
  assert.equal(base.augmentFlip, false);
  // At their "off" values the options leave the run id of older runs unchanged...
  const explicit = resolveConfig({
    net: "densenet121",
    weights: "formula",
    profile: "full",
    intensity: "off",
    augmentViews: 0,
  });
  assert.equal(runIdFor(explicit), runIdFor(base));
  // ...and each one moves it when set.
  const ids = new Set([
    runIdFor(base),
    runIdFor({ ...base, intensity: "clahe" }),
    runIdFor({ ...base, intensity: "equalize" }),
    runIdFor({ ...base, augmentViews: 2 }),
    runIdFor({ ...base, augmentViews: 2, augmentFlip: true }),
  ]);
  assert.equal(ids.size, 5);

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
