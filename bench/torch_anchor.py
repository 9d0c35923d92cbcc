"""PyTorch CPU anchor for bench/onnx.ts: img/s of torchvision's <net> (random weights, eval,
no grad) at the given batch size and thread count. Prints one number, or exits 3 when
torch/torchvision are missing (the bench then skips this anchor with a note)."""
import sys
import time

try:
    import torch
    import torchvision
except ImportError as e:
    print(f"missing: {e.name}", file=sys.stderr)
    sys.exit(3)

net, images, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
model = getattr(torchvision.models, net)(weights=None).eval()
x = torch.rand(batch, 3, 224, 224)
with torch.inference_mode():
    model(x)  # warm-up
    done = 0
    t = time.perf_counter()
    while done < images:
        n = min(batch, images - done)
        model(x[:n])
        done += n
    print(images / (time.perf_counter() - t))
