/** VGG16 as keras.applications.vgg16.VGG16 builds it (NHWC, 'caffe' preprocessing). */
import { NetBuilder } from "./builder.ts";
import type { NetSpec } from "./spec.ts";

export interface NetOptions {
  /** Keras' include_top: append the ImageNet classifier (fixes the input at 224x224). */
  includeTop?: boolean;
  /** [height, width, channels]; default [224, 224, 3]. */
  inputShape?: [number, number, number];
}

export function vgg16(opts: NetOptions = {}): NetSpec {
  const b = new NetBuilder();
  let x = b.input("input_1", opts.inputShape ?? [224, 224, 3]);
  const convs = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];
  convs.forEach(([filters, n], i) => {
    const block = `block${i + 1}`;
    for (let j = 1; j <= n; j++) {
      x = b.conv2d(x, `${block}_conv${j}`, filters, 3, { padding: "same", activation: "relu" });
    }
    x = b.maxPool(x, `${block}_pool`, 2, 2);
  });
  if (opts.includeTop) {
    x = b.flatten(x, "flatten");
    x = b.dense(x, "fc1", 4096, "relu");
    x = b.dense(x, "fc2", 4096, "relu");
    x = b.dense(x, "predictions", 1000, "softmax");
  }
  return b.build("vgg16", "caffe", x);
}
