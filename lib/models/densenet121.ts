/** DenseNet121 as keras.applications.densenet.DenseNet121 ('torch' preprocessing). */
import { NetBuilder } from "./builder.ts";
import type { NetSpec } from "./spec.ts";
import type { NetOptions } from "./vgg16.ts";

const BN_EPSILON = 1.001e-5;
const GROWTH_RATE = 32;

/** One BN-ReLU-Conv(1x1)-BN-ReLU-Conv(3x3) unit whose output is concatenated to its input. */
function convBlock(b: NetBuilder, x: string, growthRate: number, name: string): string {
  let x1 = b.batchNorm(x, `${name}_0_bn`, BN_EPSILON);
  x1 = b.activation(x1, `${name}_0_relu`, "relu");
  x1 = b.conv2d(x1, `${name}_1_conv`, 4 * growthRate, 1, { useBias: false });
  x1 = b.batchNorm(x1, `${name}_1_bn`, BN_EPSILON);
  x1 = b.activation(x1, `${name}_1_relu`, "relu");
  x1 = b.conv2d(x1, `${name}_2_conv`, growthRate, 3, { padding: "same", useBias: false });
  return b.concatenate([x, x1], `${name}_concat`);
}

function denseBlock(b: NetBuilder, x: string, blocks: number, name: string): string {
  for (let i = 1; i <= blocks; i++) x = convBlock(b, x, GROWTH_RATE, `${name}_block${i}`);
  return x;
}

function transitionBlock(
  b: NetBuilder,
  x: string,
  channels: number,
  reduction: number,
  name: string,
): string {
  x = b.batchNorm(x, `${name}_bn`, BN_EPSILON);
  x = b.activation(x, `${name}_relu`, "relu");
  x = b.conv2d(x, `${name}_conv`, Math.floor(channels * reduction), 1, { useBias: false });
  return b.avgPool(x, `${name}_pool`, 2, 2);
}

export function densenet121(opts: NetOptions = {}): NetSpec {
  const blocks = [6, 12, 24, 16];
  const b = new NetBuilder();
  let x = b.input("input_1", opts.inputShape ?? [224, 224, 3]);
  x = b.zeroPadding(x, "zero_padding2d", 3);
  x = b.conv2d(x, "conv1/conv", 64, 7, { strides: 2, useBias: false });
  x = b.batchNorm(x, "conv1/bn", BN_EPSILON);
  x = b.activation(x, "conv1/relu", "relu");
  x = b.zeroPadding(x, "zero_padding2d_1", 1);
  x = b.maxPool(x, "pool1", 3, 2);

  // Channels entering each transition: 64 + 32 * blocks, halved by every transition.
  let channels = 64;
  blocks.forEach((n, i) => {
    const stage = i + 2;
    x = denseBlock(b, x, n, `conv${stage}`);
    channels += GROWTH_RATE * n;
    if (i < blocks.length - 1) {
      x = transitionBlock(b, x, channels, 0.5, `pool${stage}`);
      channels = Math.floor(channels * 0.5);
    }
  });
  x = b.batchNorm(x, "bn", BN_EPSILON);
  x = b.activation(x, "relu", "relu");

  if (opts.includeTop) {
    x = b.globalAvgPool(x, "avg_pool");
    x = b.dense(x, "predictions", 1000, "softmax");
  }
  return b.build("densenet121", "torch", x);
}
