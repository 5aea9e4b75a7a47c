#!/usr/bin/python3
"""PyTorch CPU reference for bench_train_step: same nets, batch, optimizer, random data.

    /usr/bin/python3 bench/train/torch_ref.py [mlp|cnn] [threads] [batch] [steps]

Needs Debian's python3-torch (apt-get install python3-torch); not used by CI.
"""
import sys
import time

import torch
import torch.nn as nn

kind = sys.argv[1] if len(sys.argv) > 1 else "mlp"
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 64
steps = int(sys.argv[4]) if len(sys.argv) > 4 else (400 if kind == "mlp" else 40)
torch.set_num_threads(threads)
torch.manual_seed(1)

if kind == "mlp":
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                        nn.ReLU(), nn.Linear(128, 10))
else:
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
x = torch.rand(batch, 1, 28, 28) * 2 - 1
y = torch.randint(0, 10, (batch,))
warm = steps // 10 + 2
for s in range(warm + steps):
    if s == warm:
        t0 = time.perf_counter()
    opt.zero_grad()
    loss = loss_fn(net(x), y)
    loss.backward()
    opt.step()
secs = time.perf_counter() - t0
print(f"torch {torch.__version__} model {kind} threads {threads} batch {batch} steps {steps}: "
      f"{steps * batch / secs:.0f} samples/s, {1000 * secs / steps:.2f} ms/step")
