#!/usr/bin/python3
"""PyTorch reference numbers for train/tests/torch_ref_test.c: a few SGD and Adam steps of every
layer kind and of both default nets, computed by PyTorch from inputs and parameters that the C
test rebuilds bit for bit. Writes the C header train/tests/torch_ref_steps.h to stdout.

Regenerate (needs Debian's python3-torch; CI does not, it compiles the committed header):

    apt-get install python3-torch
    /usr/bin/python3 train/tests/torch_ref_steps.py > train/tests/torch_ref_steps.h

Every input, parameter and loss weight is gen(seed, i) * scale: gen() is the integer hash below,
giving k / 2^23 - 1 for a 24-bit k (exact in float32), and scale is a power of two, so both
sides start from identical floats. The update rules are torch.optim.SGD (momentum, dampening
0) and torch.optim.Adam (betas 0.9, 0.999, eps 1e-8, no weight decay), which train/optim.h
follows.

Cases (the C test compares each number within the tolerances at the top of torch_ref_test.c):
  layers   linear, conv 3x3 pad 1, conv 5x5 pad 0, conv 5x5 pad 2: loss = sum(y * r) for a fixed
           r; the first step's y, dx, dW, db; 3 SGD steps and 3 Adam steps from the same start:
           each step's loss and every parameter after the last
  relu, maxpool 2x2: y and dx for one input
  nets     the default MLP (784-256-128-10) and CNN (c32-c64-f128, 3x3), 1x28x28 inputs, batch
           16, cross-entropy: 4 SGD steps (lr 0.05, momentum 0.9) and 4 Adam steps (lr 1e-3):
           each step's mean loss and, per parameter tensor, sum(p - p0) and sum(|p - p0|)
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

M32 = 0xFFFFFFFF
STEPS_LAYER = 3
STEPS_NET = 4
NET_BATCH = 16


def h32(seed, i):
    h = (i * 0x9E3779B1 + seed * 0x85EBCA77 + 0x165667B1) & M32
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & M32
    h ^= h >> 12
    h = (h * 0x297A2D39) & M32
    h ^= h >> 15
    return h


def gen(seed, n, scale, shape):
    """n values k / 2^23 - 1 (k 24-bit), times a power of two: exact in float32."""
    vals = [((h32(seed, i) >> 8) - 8388608) / 8388608.0 * scale for i in range(n)]
    return torch.tensor(vals, dtype=torch.float64).to(torch.float32).reshape(shape)


def labels(seed, n):
    return torch.tensor([h32(seed, i) % 10 for i in range(n)], dtype=torch.long)


def pow2_scale(bound):
    """The power of two nearest (in log) to an init bound."""
    return 2.0 ** round(math.log2(bound))


out = []


def c_float(v):
    """A C float literal that reads back as the same float32 (9 significant digits)."""
    t = f"{v:.9g}"
    if not any(ch in t for ch in ".en"):
        t += ".0"
    return t + "f"


def emit_array(name, t):
    vals = t.detach().to(torch.float64).reshape(-1).tolist()
    lines = [", ".join(c_float(v) for v in vals[i:i + 5]) for i in range(0, len(vals), 5)]
    body = ",\n        ".join(lines)
    out.append(f'    {{"{name}", {len(vals)}, (const float[]){{\n        {body}}}}},')


# ---- layers ------------------------------------------------------------------------------

# name, kind, c, h, w, oc, k, pad, batch, seed (kinds as train/layers.h spells them)
LAYERS = [
    ("linear", "LAYER_LINEAR", 13, 1, 1, 7, 0, 0, 3, 101),
    ("conv3p1", "LAYER_CONV", 3, 6, 5, 4, 3, 1, 2, 202),
    ("conv5p0", "LAYER_CONV", 2, 7, 8, 3, 5, 0, 3, 303),
    ("conv5p2", "LAYER_CONV", 2, 6, 6, 3, 5, 2, 2, 404),
    ("relu", "LAYER_RELU", 4, 3, 3, 4, 0, 0, 3, 505),
    ("maxpool", "LAYER_MAXPOOL", 3, 7, 6, 3, 2, 0, 2, 606),
]
X_SCALE, R_SCALE, W_SCALE, B_SCALE = 1.0, 0.5, 0.25, 0.125
SGD_LR, SGD_MOM, ADAM_LR = 0.1, 0.9, 0.01


def out_hw(kind, h, w, k, pad):
    if kind == "LAYER_CONV":
        return h + 2 * pad - k + 1, w + 2 * pad - k + 1
    if kind == "LAYER_MAXPOOL":
        return h // k, w // k
    return h, w


def layer_fn(kind, c, oc, k, pad):
    if kind == "LAYER_LINEAR":
        return lambda x, W, b: F.linear(x.reshape(x.shape[0], -1), W, b)
    if kind == "LAYER_CONV":
        return lambda x, W, b: F.conv2d(x, W, b, padding=pad)
    if kind == "LAYER_RELU":
        return lambda x, W, b: F.relu(x)
    return lambda x, W, b: F.max_pool2d(x, k)


def layer_case(name, kind, c, h, w, oc, k, pad, n, seed):
    oh, ow = out_hw(kind, h, w, k, pad)
    f = layer_fn(kind, c, oc, k, pad)
    has_params = kind in ("LAYER_LINEAR", "LAYER_CONV")
    xshape = (n, c) if kind == "LAYER_LINEAR" else (n, c, h, w)
    yshape = (n, oc) if kind == "LAYER_LINEAR" else (n, oc, oh, ow)
    nw = oc * c * (k * k if kind == "LAYER_CONV" else 1) if has_params else 0
    wshape = (oc, c) if kind == "LAYER_LINEAR" else (oc, c, k, k)

    def inputs(step):
        x = gen(seed + 10 * step + 1, math.prod(xshape), X_SCALE, xshape)
        r = gen(seed + 10 * step + 2, math.prod(yshape), R_SCALE, yshape)
        return x, r

    if not has_params:
        x, r = inputs(0)
        x.requires_grad_(True)
        y = f(x, None, None)
        (y * r).sum().backward()
        emit_array(f"{name}/y", y)
        emit_array(f"{name}/dx", x.grad)
        return
    for opt_name in ("sgd", "adam"):
        W = gen(seed + 3, nw, W_SCALE, wshape).requires_grad_(True)
        b = gen(seed + 4, oc, B_SCALE, (oc,)).requires_grad_(True)
        if opt_name == "sgd":
            opt = torch.optim.SGD([W, b], lr=SGD_LR, momentum=SGD_MOM)
        else:
            opt = torch.optim.Adam([W, b], lr=ADAM_LR)
        losses = []
        for step in range(STEPS_LAYER):
            x, r = inputs(step)
            x.requires_grad_(True)
            opt.zero_grad()
            y = f(x, W, b)
            loss = (y.double() * r.double()).sum()
            (y * r).sum().backward()
            losses.append(loss.item())
            if step == 0 and opt_name == "sgd":
                emit_array(f"{name}/y", y)
                emit_array(f"{name}/dx", x.grad)
                emit_array(f"{name}/dw", W.grad)
                emit_array(f"{name}/db", b.grad)
            opt.step()
        emit_array(f"{name}/{opt_name}/loss", torch.tensor(losses))
        emit_array(f"{name}/{opt_name}/params", torch.cat([W.detach().reshape(-1), b.detach()]))


# ---- nets --------------------------------------------------------------------------------

NET_SGD_LR, NET_SGD_MOM, NET_ADAM_LR = 0.05, 0.9, 1e-3
NETS = [("mlp", 7001), ("cnn", 8001)]


def build(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                             nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def init_net(net, seed):
    """Parameters in the C model's order (layer by layer, weight then bias); returns the scale of
    each tensor, which the header records for the C side."""
    scales = []
    t = 0
    for mod in net:
        if not isinstance(mod, (nn.Linear, nn.Conv2d)):
            continue
        fan_in = mod.weight[0].numel()
        for p, s in ((mod.weight, pow2_scale(math.sqrt(6.0 / fan_in))), (mod.bias, 2.0 ** -5)):
            with torch.no_grad():
                p.copy_(gen(seed + 100 + t, p.numel(), s, p.shape))
            scales.append(s)
            t += 1
    return scales


def net_case(kind, seed):
    scales = None
    for opt_name in ("sgd", "adam"):
        net = build(kind)
        scales = init_net(net, seed)
        p0 = [p.detach().clone() for p in net.parameters()]
        if opt_name == "sgd":
            opt = torch.optim.SGD(net.parameters(), lr=NET_SGD_LR, momentum=NET_SGD_MOM)
        else:
            opt = torch.optim.Adam(net.parameters(), lr=NET_ADAM_LR)
        losses = []
        for step in range(STEPS_NET):
            x = gen(seed + 10 * step + 1, NET_BATCH * 784, X_SCALE, (NET_BATCH, 1, 28, 28))
            y = labels(seed + 10 * step + 2, NET_BATCH)
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            losses.append(loss.item())
            opt.step()
        emit_array(f"{kind}/{opt_name}/loss", torch.tensor(losses))
        moved = [(p.detach().double() - q.double()) for p, q in zip(net.parameters(), p0)]
        emit_array(f"{kind}/{opt_name}/sum_delta", torch.tensor([d.sum().item() for d in moved]))
        emit_array(f"{kind}/{opt_name}/sum_abs_delta",
                   torch.tensor([d.abs().sum().item() for d in moved]))
    return scales


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for case in LAYERS:
        layer_case(*case)
    net_scales = {kind: net_case(kind, seed) for kind, seed in NETS}

    w = sys.stdout.write
    w("/* Generated by train/tests/torch_ref_steps.py with PyTorch %s: do not edit.\n"
      " * Regenerate: /usr/bin/python3 train/tests/torch_ref_steps.py > "
      "train/tests/torch_ref_steps.h */\n" % torch.__version__)
    w("#ifndef WSLQ_TRAIN_TORCH_REF_STEPS_H\n#define WSLQ_TRAIN_TORCH_REF_STEPS_H\n\n")
    w("/* clang-format off */\n")
    w('#define TORCH_REF_VERSION "%s"\n' % torch.__version__)
    w("#define TORCH_REF_STEPS_LAYER %d\n#define TORCH_REF_STEPS_NET %d\n" % (STEPS_LAYER,
                                                                               STEPS_NET))
    w("#define TORCH_REF_NET_BATCH %d\n" % NET_BATCH)
    for k, v in (("X_SCALE", X_SCALE), ("R_SCALE", R_SCALE), ("W_SCALE", W_SCALE),
                 ("B_SCALE", B_SCALE), ("SGD_LR", SGD_LR), ("SGD_MOM", SGD_MOM),
                 ("ADAM_LR", ADAM_LR), ("NET_SGD_LR", NET_SGD_LR), ("NET_SGD_MOM", NET_SGD_MOM),
                 ("NET_ADAM_LR", NET_ADAM_LR)):
        w(f"#define TORCH_REF_{k} {c_float(v)}\n")
    w("\n")
    w("typedef struct {\n    const char *name;\n    int kind; /* layer_kind_t */\n"
      "    int c, h, w, oc, k, pad, batch;\n    unsigned seed;\n} torch_ref_layer_t;\n\n")
    w("static const torch_ref_layer_t torch_ref_layers[] = {\n")
    for name, kind, c, h, w_, oc, k, pad, n, seed in LAYERS:
        w(f'    {{"{name}", {kind}, {c}, {h}, {w_}, {oc}, {k}, {pad}, {n}, {seed}u}},\n')
    w("};\n\n")
    w("typedef struct {\n    const char *name;\n    unsigned seed;\n    int n_tensors;\n"
      "    float scale[8]; /* each parameter tensor's init scale, in model order */\n"
      "} torch_ref_net_t;\n\n")
    w("static const torch_ref_net_t torch_ref_nets[] = {\n")
    for kind, seed in NETS:
        sc = net_scales[kind]
        w(f'    {{"{kind}", {seed}u, {len(sc)}, {{{", ".join(c_float(s) for s in sc)}}}}},\n')
    w("};\n\n")
    w("typedef struct {\n    const char *name;\n    int n;\n    const float *v;\n"
      "} torch_ref_array_t;\n\n")
    w("static const torch_ref_array_t torch_ref_arrays[] = {\n")
    w("\n".join(out) + "\n};\n/* clang-format on */\n\n#endif\n")


if __name__ == "__main__":
    main()
