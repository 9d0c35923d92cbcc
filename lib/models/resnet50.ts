/** ResNet50 as keras.applications.resnet.ResNet50 (Keras 2.2+ names, 'caffe' preprocessing). */
import { NetBuilder } from "./builder.ts";
import type { NetSpec } from "./spec.ts";
import type { NetOptions } from "./vgg16.ts";

const BN_EPSILON = 1.001e-5;

/** A residual block (Keras' `block1`). */
function block1(
  b: NetBuilder,
  x: string,
  filters: number,
  name: string,
  opts: { stride?: number; convShortcut?: boolean } = {},
): string {
  const stride = opts.stride ?? 1;
  let shortcut = x;
  if (opts.convShortcut ?? true) {
    shortcut = b.conv2d(x, `${name}_0_conv`, 4 * filters, 1, { strides: stride });
    shortcut = b.batchNorm(shortcut, `${name}_0_bn`, BN_EPSILON);
  }
  let y = b.conv2d(x, `${name}_1_conv`, filters, 1, { strides: stride });
  y = b.batchNorm(y, `${name}_1_bn`, BN_EPSILON);
  y = b.activation(y, `${name}_1_relu`, "relu");
  y = b.conv2d(y, `${name}_2_conv`, filters, 3, { padding: "same" });
  y = b.batchNorm(y, `${name}_2_bn`, BN_EPSILON);
  y = b.activation(y, `${name}_2_relu`, "relu");
  y = b.conv2d(y, `${name}_3_conv`, 4 * filters, 1);
  y = b.batchNorm(y, `${name}_3_bn`, BN_EPSILON);
  y = b.addLayer([shortcut, y], `${name}_add`);
  return b.activation(y, `${name}_out`, "relu");
}

/** A stack of residual blocks (Keras' `stack1`). */
function stack1(
  b: NetBuilder,
  x: string,
  filters: number,
  blocks: number,
  name: string,
  stride1 = 2,
): string {
  x = block1(b, x, filters, `${name}_block1`, { stride: stride1 });
  for (let i = 2; i <= blocks; i++) {
    x = block1(b, x, filters, `${name}_block${i}`, { convShortcut: false });
  }
  return x;
}

export function resnet50(opts: NetOptions = {}): NetSpec {
  const b = new NetBuilder();
  let x = b.input("input_1", opts.inputShape ?? [224, 224, 3]);
  x = b.zeroPadding(x, "conv1_pad", 3);
  x = b.conv2d(x, "conv1_conv", 64, 7, { strides: 2 });
  x = b.batchNorm(x, "conv1_bn", BN_EPSILON);
  x = b.activation(x, "conv1_relu", "relu");
  x = b.zeroPadding(x, "pool1_pad", 1);
  x = b.maxPool(x, "pool1_pool", 3, 2);

  x = stack1(b, x, 64, 3, "conv2", 1);
  x = stack1(b, x, 128, 4, "conv3");
  x = stack1(b, x, 256, 6, "conv4");
  x = stack1(b, x, 512, 3, "conv5");

  if (opts.includeTop) {
    x = b.globalAvgPool(x, "avg_pool");
    x = b.dense(x, "predictions", 1000, "softmax");
  }
  return b.build("resnet50", "caffe", x);
}
