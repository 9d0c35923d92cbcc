"""PyTorch anchors for bench/onnx.ts. Builds torchvision's <net> (random weights) cut to what
cxr's feature export computes (the trunk, then global average pooling: no classifier), and

- prints its img/s on PyTorch CPU (eval, no grad) at the given batch size and thread count;
- with a fifth argument PATH, first writes that trunk as ONNX to PATH (torch.onnx.export,
  input "input" NCHW float32 with a dynamic batch): the export of another exporter, which the
  bench runs in ONNX Runtime beside cxr's own.

Exits 3 when torch/torchvision are missing (the bench then skips these anchors with a note)."""
import sys
import time

try:
    import torch
    import torchvision
except ImportError as e:
    print(f"missing: {e.name}", file=sys.stderr)
    sys.exit(3)


def trunk(name):
    m = getattr(torchvision.models, name)(weights=None).eval()
    pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    if name.startswith("resnet"):
        return torch.nn.Sequential(*list(m.children())[:-2], pool)
    if name.startswith("densenet"):
        return torch.nn.Sequential(m.features, torch.nn.ReLU(), pool)
    return torch.nn.Sequential(m.features, pool)  # vgg: the conv blocks, as Keras' pooling="avg"


net, images, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
model = trunk(net).eval()
x = torch.rand(batch, 3, 224, 224)
if len(sys.argv) > 5:
    torch.onnx.export(model, x[:1], sys.argv[5], input_names=["input"], output_names=["pooled"],
                      dynamic_axes={"input": {0: "n"}, "pooled": {0: "n"}}, opset_version=13)
with torch.inference_mode():
    model(x)  # warm-up
    done = 0
    t = time.perf_counter()
    while done < images:
        n = min(batch, images - done)
        model(x[:n])
        done += n
    print(images / (time.perf_counter() - t))
