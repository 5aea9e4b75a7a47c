#!/usr/bin/python3
"""PyTorch reference for bench_train_step and bench_gpu: same nets, batch, optimizer, random data.

    /usr/bin/python3 bench/train/torch_ref.py [--device cpu|cuda] [mlp|cnn] [threads] [batch] [steps]

batch may be a comma-separated list (64,256): one line per batch. --device cuda runs on GPU 0
in strict FP32 (TF32 off for matmuls and cuDNN convolutions, as wslq-train computes), timing
between torch.cuda.synchronize() calls; without a usable GPU it prints "no GPU: <why>" and
exits 77. On CPU it needs Debian's python3-torch (apt-get install python3-torch); not used by CI.
"""
import sys
import time

import torch
import torch.nn as nn

args = sys.argv[1:]
device = "cpu"
if "--device" in args:
    i = args.index("--device")
    if i + 1 >= len(args) or args[i + 1] not in ("cpu", "cuda"):
        sys.exit("usage: torch_ref.py [--device cpu|cuda] [mlp|cnn] [threads] [batch[,batch]] [steps]")
    device = args[i + 1]
    del args[i:i + 2]
kind = args[0] if len(args) > 0 else "mlp"
threads = int(args[1]) if len(args) > 1 else 1
batches = [int(b) for b in args[2].split(",")] if len(args) > 2 else [64]
if device == "cuda":
    default_steps = 400 if kind == "mlp" else 100  # as bench_gpu
else:
    default_steps = 400 if kind == "mlp" else 40
steps = int(args[3]) if len(args) > 3 else default_steps
torch.set_num_threads(threads)

where = "cpu"
if device == "cuda":
    if not torch.cuda.is_available():
        print(f"no GPU: torch {torch.__version__} (CUDA {torch.version.cuda}): "
              "torch.cuda.is_available() is False")
        sys.exit(77)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    where = f"cuda ({torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()})"


def sync():
    if device == "cuda":
        torch.cuda.synchronize()


for batch in batches:
    torch.manual_seed(1)
    if kind == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                            nn.ReLU(), nn.Linear(128, 10))
    else:
        net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                            nn.Linear(128, 10))
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = (torch.rand(batch, 1, 28, 28) * 2 - 1).to(device)
    y = torch.randint(0, 10, (batch,)).to(device)
    warm = steps // 10 + 2
    for s in range(warm + steps):
        if s == warm:
            sync()
            t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
    sync()
    secs = time.perf_counter() - t0
    print(f"torch {torch.__version__} {where} model {kind} threads {threads} batch {batch} "
          f"steps {steps}: {steps * batch / secs:.0f} samples/s, {1000 * secs / steps:.3f} ms/step",
          flush=True)
