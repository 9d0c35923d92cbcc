import { loadClassifier } from "../lib/inference/classifier.ts";
import { decodeImage } from "../lib/data/images.ts";
import { subgraph } from "../lib/models/graph.ts";
import { withHead } from "../lib/models/head.ts";
import { getNetSpec } from "../lib/models/registry.ts";
import { buildTfModel } from "../lib/models/tfjs.ts";
import { loadWeights } from "../lib/models/weights/io.ts";
import { initBackend, tf } from "../lib/training/backend.ts";
await initBackend();
const train = "/work/shared/data/chest_xray/train";
const p = train+"/PNEUMONIA/"+[...Deno.readDirSync(train+"/PNEUMONIA")].map(e=>e.name).sort()[0];
const img = await decodeImage(p);
const c = await loadClassifier(`/tmp/cxr_f_vgg16`);
const out = await c.predict(img.data, 1);
const w = await loadWeights("/tmp/cxr_f_vgg16/gradcam_tail");
console.log([...w.keys()]);
const sub = subgraph(withHead(getNetSpec("vgg16")), ["block5_conv3"], ["head_dense"]);
console.log(sub.layers.map(l=>l.name+":"+l.kind));
const m = buildTfModel(sub, w, {trainable:false});
const a = tf.tensor4d(out.gradcam!.data, [1,14,14,512]);
console.log("tf prob", (m.predict(a) as tf.Tensor).dataSync(), "ort", out.prob);
const g = tf.grad((x: tf.Tensor) => (m.apply(x, {training:false}) as tf.Tensor).sum() as tf.Scalar)(a);
const gs = g.sum([0,1,2]).dataSync();
const k = w.get("head_dense")!.kernel!.data;
console.log("grad sums", gs.slice(0,5), "kernel*p(1-p)", k.slice(0,5).map(v=>v*out.prob[0]*(1-out.prob[0])));
const nz = g.notEqual(0).sum().dataSync(); console.log("nonzero grads", nz, "of", 14*14*512, "expect", 49*512);
await tf.setBackend("cpu"); await tf.ready();
{
const a2 = tf.tensor4d(out.gradcam!.data, [1,14,14,512]);
const g2 = tf.grad((x: tf.Tensor) => (m.apply(x, {training:false}) as tf.Tensor).sum() as tf.Scalar)(a2);
console.log("cpu grad sums", g2.sum([0,1,2]).dataSync().slice(0,5), "nonzero", g2.notEqual(0).sum().dataSync());
// small multi-channel maxpool test
const t = tf.randomUniform([1,4,4,3]) as tf.Tensor4D;
const gc = tf.grad((x: tf.Tensor4D) => tf.maxPool(x,2,2,"valid").sum() as tf.Scalar)(t).dataSync();
await tf.setBackend("wasm"); await tf.ready();
const tw = tf.tensor4d(t.dataSync(), [1,4,4,3]);
const gw = tf.grad((x: tf.Tensor4D) => tf.maxPool(x,2,2,"valid").sum() as tf.Scalar)(tw).dataSync();
console.log("cpu", Array.from(gc).join(""), "\nwsm", Array.from(gw).join(""));
}
