"""The training tasks of optimizer_discovery (harness 4). Each owns its data, model, loss, budget and seeds.

Every task ships with Python or scikit-learn, or is generated (nothing is downloaded), and gives a
functional view of its model: ``init_params(seed)``, ``loss(params, batch)``, ``make_batch(generator)``
for training and ``val_loss(params)`` for the trusted side, which the training loop vectorises over
learning rates with torch.func. A task's validation data is built only when its validation loss is
first asked for: the candidate's process, which trains, never builds it. Which tasks exist, their
tiers and seeds: ``suites``.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import torch
from torch import nn
from torch.func import functional_call

Params = dict[str, torch.Tensor]
Batch = tuple[torch.Tensor, ...]


@dataclass
class Task:
    name: str
    steps: int  # the budget N
    weight_decay: float
    device: torch.device
    make_batch: Callable[[torch.Generator], Batch]
    loss: Callable[[Params, Batch], torch.Tensor]
    make_val: Callable[[], Batch]  # the validation data: built on the trusted side, on first use
    init_params: Callable[[int], Params]
    stream: int = 0  # this task's own batch stream: a generator seeded from (stream, training seed)
    _val: Batch | None = field(default=None, repr=False)
    # The model behind ``loss`` is shared by everything in this process, and torch.func.functional_call
    # swaps its tensors in place while it runs: two evaluations scored at once (the process backend's
    # threads) would measure one program's validation loss with the other's parameters.
    _trusted: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def val_loss(self, params: Params) -> torch.Tensor:
        with self._trusted:
            if self._val is None:
                self._val = self.make_val()
            return self.loss(params, self._val)

    def batches(self, seed: int) -> torch.Generator:
        """The generator of this task's training batches for one training seed."""
        return torch.Generator(device=self.device).manual_seed(_mix(self.stream, seed))


# torch's global generator is one per process: the trusted side scores evaluations in threads, and a
# teacher drawn while another thread seeds or draws for its own model would be another teacher.
GLOBAL_RNG = threading.RLock()


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """torch's global generator seeded for what the block builds, no other thread of this process drawing
    from it meanwhile (every draw of this module goes through here)."""
    with GLOBAL_RNG:
        torch.manual_seed(seed)
        yield


def _mix(*values: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(values).encode()).digest()[:7], "big")


def _module_task(
    name: str,
    steps: int,
    wd: float,
    device: torch.device,
    make_module: Callable[[], nn.Module],
    make_batch: Callable[[torch.Generator], Batch],
    make_val: Callable[[], Batch],
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    stream: int,
) -> Task:
    with seeded(_mix(stream, 0, 1)):  # the structure only (its values are never used), but it draws
        module = make_module().to(device)

    def init(seed: int) -> Params:
        with seeded(_mix(stream, seed, 1)):  # initialisation drawn on the CPU: the same start on every device
            m = make_module()
        return {k: v.detach().clone().to(device) for k, v in m.named_parameters()}

    def loss(params: Params, batch: Batch) -> torch.Tensor:
        x, y = batch
        return criterion(functional_call(module, params, (x,)), y)

    return Task(name, steps, wd, device, make_batch, loss, make_val, init, stream)


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _randint(high: int, size: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(high, (size,), generator=gen, device=gen.device)


def _fixed(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- filter: a cheap gate ------------------------------------------------------------------------
def noisy_quadratic(device: torch.device, dim: int = 100, steps: int = 200, noise: float = 0.3) -> Task:
    """The noisy quadratic model: 0.5 x'Hx, diagonal H over 3 decades, noisy gradients.

    Validation loss is the true (noise-free) loss. Axis-aligned curvature is the stylised case where
    per-coordinate preconditioning pays, as it does between the layers and units of a network.
    """
    eig = torch.logspace(-3, 0, dim, device=device)

    def make_batch(gen: torch.Generator) -> Batch:
        return (noise * torch.randn(dim, generator=gen, device=gen.device),)

    def loss(params: Params, batch: Batch) -> torch.Tensor:
        x = params["x"]
        return 0.5 * (eig * x * x).sum() + (batch[0] @ x if batch else 0.0)

    def init(seed: int) -> Params:
        return {"x": torch.randn(dim, generator=_fixed(_mix(1, seed))).to(device)}

    return Task("quadratic", steps, 0.0, device, make_batch, loss, lambda: (), init, stream=1)


# -- data that ships with scikit-learn and Python ------------------------------------------------------
@cache
def _sk_split(name: str, part: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One split (train: 3/4, val: 1/4) of a scikit-learn dataset, standardised with the train statistics."""
    from sklearn import datasets

    loader = {
        "breast_cancer": datasets.load_breast_cancer,
        "digits": datasets.load_digits,
        "wine": datasets.load_wine,
    }[name]
    x_np, y_np = loader(return_X_y=True)
    x = torch.tensor(x_np, dtype=torch.float32)
    y = torch.tensor(y_np, dtype=torch.long)
    perm = torch.randperm(len(x), generator=_fixed(0))
    x, y = x[perm], y[perm]
    n_val = len(x) // 4
    # Pixels share one scale: standardise them as a whole (per pixel, a pixel that is blank in every
    # training image but not in some validation image would be divided by ~0 and dominate the loss).
    # Breast-cancer and wine features have different units: standardise each.
    mean = x[n_val:].mean(0)
    std = x[n_val:].std() if name == "digits" else x[n_val:].std(0)
    x = (x - mean) / std
    rows = slice(n_val, None) if part == "train" else slice(0, n_val)
    return x[rows].to(device), y[rows].to(device)


def sk_task(
    device: torch.device,
    name: str,
    data: str,
    steps: int,
    batch: int,
    make_module: Callable[[], nn.Module],
    stream: int,
    wd: float = 0.0,
    reconstruct: bool = False,
) -> Task:
    """A scikit-learn dataset: classification, or (``reconstruct``) an autoencoder of its features."""
    xt, yt = _sk_split(data, "train", device)

    def make_batch(gen: torch.Generator) -> Batch:
        idx = _randint(len(xt), batch, gen)
        return (xt[idx], xt[idx]) if reconstruct else (xt[idx], yt[idx])

    def make_val() -> Batch:
        xv, yv = _sk_split(data, "val", device)
        return (xv, xv) if reconstruct else (xv, yv)

    criterion = nn.functional.mse_loss if reconstruct else _ce
    return _module_task(name, steps, wd, device, make_module, make_batch, make_val, criterion, stream)


def digits_mlp(width: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))


def autoencoder_net(features: int = 30, hidden: int = 16, code: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Linear(features, hidden),
        nn.Tanh(),
        nn.Linear(hidden, code),
        nn.Tanh(),
        nn.Linear(code, hidden),
        nn.Tanh(),
        nn.Linear(hidden, features),
    )


def wine_autoencoder() -> nn.Module:
    """The wine features (13) through a 3-wide code: a named factory, since a task's keyword arguments are
    hashed into its curve key by name."""
    return autoencoder_net(13, 8, 3)


@cache
def _corpus(source: str, part: str) -> torch.Tensor:
    """Byte ids of text that ships with Python, one part of it: its own documentation (``pydoc``), or the
    source of its standard library (``stdlib_a`` / ``stdlib_b``: alternate modules, no file in both)."""
    if source == "pydoc":
        from pydoc_data.topics import topics

        text = "".join(topics[k] for k in sorted(topics))  # ~465K characters of Python's own docs
    else:
        import sysconfig
        from pathlib import Path

        files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:120]
        chosen = files[0::2] if source == "stdlib_a" else files[1::2]
        text = "".join(f.read_text(errors="replace") for f in chosen)
    ids = torch.tensor(list(text.encode("utf-8")), dtype=torch.long)
    split = int(0.9 * len(ids))
    return ids[:split] if part == "train" else ids[split:]


class _Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        hd = d // self.heads
        q, k, v = (z.reshape(b, t, self.heads, hd).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))


class CharLM(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, heads: int, ctx: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(0.02 * torch.randn(ctx, d))
        self.blocks = nn.Sequential(*[_Block(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.ln(self.blocks(self.emb(idx) + self.pos[: idx.shape[1]])))


def char_lm(
    device: torch.device,
    name: str,
    stream: int,
    width: int = 32,
    steps: int = 150,
    ctx: int = 32,
    batch: int = 8,
    layers: int = 1,
    heads: int = 2,
    val_sequences: int = 256,
    corpus: str = "pydoc",
    wd: float = 0.01,
) -> Task:
    train = _corpus(corpus, "train").to(device)
    offsets = torch.arange(ctx, device=device)

    def windows(data: torch.Tensor, s: torch.Tensor) -> Batch:
        at = s.to(device)[:, None] + offsets
        return data[at], data[at + 1]

    def make_batch(gen: torch.Generator) -> Batch:
        return windows(train, _randint(len(train) - ctx - 1, batch, gen))

    def make_val() -> Batch:
        val = _corpus(corpus, "val").to(device)
        return windows(val, torch.randint(len(val) - ctx - 1, (val_sequences,), generator=_fixed(_mix(stream, 99))))

    return _module_task(
        name, steps, wd, device, lambda: CharLM(256, width, layers, heads, ctx), make_batch, make_val, _ce, stream
    )


# -- teacher-student tasks: fresh batches every step (no overfitting) ----------------------------------
class ResMLP(nn.Module):
    """Residual blocks with LayerNorm (pre-norm): a family the ReLU MLPs of select do not show."""

    def __init__(self, din: int, width: int, blocks: int, out: int) -> None:
        super().__init__()
        self.inp = nn.Linear(din, width)
        self.norms = nn.ModuleList([nn.LayerNorm(width) for _ in range(blocks)])
        self.fcs = nn.ModuleList([nn.Linear(width, width) for _ in range(blocks)])
        self.ln = nn.LayerNorm(width)
        self.out = nn.Linear(width, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for norm, fc in zip(self.norms, self.fcs, strict=True):
            h = h + nn.functional.gelu(fc(norm(h)))
        return self.out(self.ln(h))


def teacher(
    device: torch.device,
    name: str,
    kind: str,
    stream: int,
    teacher_seed: int,
    din: int = 32,
    teacher_width: int = 64,
    width: int = 128,
    depth: int = 2,
    batch: int = 64,
    steps: int = 200,
    val_size: int = 4096,
    classes: int = 10,
    student: str = "mlp",
) -> Task:
    """Regression onto (``kind="reg"``) or classification by (``"cls"``) a fixed random teacher network."""
    out = 1 if kind == "reg" else classes
    with seeded(teacher_seed):
        net = nn.Sequential(
            nn.Linear(din, teacher_width),
            nn.Tanh(),
            nn.Linear(teacher_width, teacher_width),
            nn.Tanh(),
            nn.Linear(teacher_width, out),
        ).to(device)
    for p in net.parameters():
        p.requires_grad_(False)

    def target(x: torch.Tensor) -> torch.Tensor:
        y = net(x)
        return y if kind == "reg" else y.argmax(-1)

    def make_val() -> Batch:
        xv = torch.randn(val_size, din, generator=_fixed(_mix(stream, 8))).to(device)
        return xv, target(xv)

    def make_batch(gen: torch.Generator) -> Batch:
        x = torch.randn(batch, din, generator=gen, device=gen.device)
        return x, target(x)

    def make_student() -> nn.Module:
        if student == "resmlp":
            return ResMLP(din, width, depth, out)
        layers: list[nn.Module] = []
        w = din
        for _ in range(depth):
            layers += [nn.Linear(w, width), nn.ReLU()]
            w = width
        return nn.Sequential(*layers, nn.Linear(w, out))

    criterion = nn.functional.mse_loss if kind == "reg" else _ce
    return _module_task(name, steps, 0.0, device, make_student, make_batch, make_val, criterion, stream)


class GRU(nn.Module):
    """A gated recurrent net written from linear layers (so that torch.func can batch it over learning
    rates), reading a sequence and classifying it from its last state."""

    def __init__(self, din: int, hidden: int, out: int) -> None:
        super().__init__()
        self.x_gates, self.h_gates = nn.Linear(din, 3 * hidden), nn.Linear(hidden, 3 * hidden)
        self.head = nn.Linear(hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0], self.h_gates.in_features, device=x.device)
        for t in range(x.shape[1]):
            xz, xr, xn = self.x_gates(x[:, t]).chunk(3, -1)
            hz, hr, hn = self.h_gates(h).chunk(3, -1)
            z, r = torch.sigmoid(xz + hz), torch.sigmoid(xr + hr)
            h = (1 - z) * torch.tanh(xn + r * hn) + z * h
        return self.head(h)


def sequence_teacher(
    device: torch.device,
    name: str,
    stream: int,
    teacher_seed: int,
    length: int = 12,
    din: int = 4,
    hidden: int = 32,
    classes: int = 6,
    batch: int = 64,
    steps: int = 300,
    val_size: int = 2048,
) -> Task:
    """Sequences labelled by a fixed random recurrent teacher; a GRU student learns to read them."""
    with seeded(teacher_seed):
        net = GRU(din, 24, classes).to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)  # a teacher with sharper dynamics, so that the label depends on the whole sequence

    def label(x: torch.Tensor) -> torch.Tensor:
        return net(x).argmax(-1)

    def make_batch(gen: torch.Generator) -> Batch:
        x = torch.randn(batch, length, din, generator=gen, device=gen.device)
        return x, label(x)

    def make_val() -> Batch:
        xv = torch.randn(val_size, length, din, generator=_fixed(_mix(stream, 8))).to(device)
        return xv, label(xv)

    return _module_task(name, steps, 0.0, device, lambda: GRU(din, hidden, classes), make_batch, make_val, _ce, stream)


# -- generated images: convolutional nets ----------------------------------------------------------------
class SmallCNN(nn.Module):
    def __init__(self, classes: int, channels: int = 8, side: int = 12) -> None:
        super().__init__()
        self.side = side
        self.c1 = nn.Conv2d(1, channels, 3, padding=1)
        self.c2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.fc = nn.Linear(2 * channels * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu(self.c1(x.reshape(-1, 1, self.side, self.side)))
        x = nn.functional.max_pool2d(nn.functional.relu(self.c2(x)), 2)
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 2).flatten(1))


def _bars(gen: torch.Generator, n: int, side: int, device: torch.device) -> Batch:
    """Images of one bar (horizontal, vertical, or either diagonal) at a random place, in noise: the class is
    its orientation."""
    ys, xs = torch.meshgrid(torch.arange(side, device=device), torch.arange(side, device=device), indexing="ij")
    label = _randint(4, n, gen)
    centre = torch.randint(3, side - 3, (n, 2), generator=gen, device=gen.device).float()
    dy, dx = ys[None] - centre[:, 0, None, None], xs[None] - centre[:, 1, None, None]
    dist = torch.stack([dy.abs(), dx.abs(), (dy - dx).abs() / math.sqrt(2), (dy + dx).abs() / math.sqrt(2)], 1)
    along = torch.stack([dx.abs(), dy.abs(), (dy + dx).abs() / math.sqrt(2), (dy - dx).abs() / math.sqrt(2)], 1)
    pick = label[:, None, None, None].expand(-1, 1, side, side)
    bar = ((dist.gather(1, pick) < 0.8) & (along.gather(1, pick) < 3.0)).float()[:, 0]
    image = bar + 0.7 * torch.randn(n, side, side, generator=gen, device=gen.device)
    return image, label


def _gratings(gen: torch.Generator, n: int, side: int, device: torch.device) -> Batch:
    """Sinusoidal gratings at a random angle and phase, in noise: the class is one of four frequencies."""
    ys, xs = torch.meshgrid(
        torch.arange(side, device=device).float(), torch.arange(side, device=device).float(), indexing="ij"
    )
    label = _randint(4, n, gen)
    freq = torch.tensor([0.5, 0.7, 0.9, 1.1], device=device)[label]
    angle = torch.rand(n, generator=gen, device=gen.device) * math.pi
    phase = torch.rand(n, generator=gen, device=gen.device) * 2 * math.pi
    proj = xs[None] * torch.cos(angle)[:, None, None] + ys[None] * torch.sin(angle)[:, None, None]
    image = torch.sin(freq[:, None, None] * proj + phase[:, None, None])
    return image + 1.6 * torch.randn(n, side, side, generator=gen, device=gen.device), label


def image_task(
    device: torch.device,
    name: str,
    stream: int,
    images: str,
    steps: int = 250,
    batch: int = 32,
    side: int = 12,
    val_size: int = 1024,
) -> Task:
    draw = {"bars": _bars, "gratings": _gratings}[images]

    def make_batch(gen: torch.Generator) -> Batch:
        return draw(gen, batch, side, device)

    def make_val() -> Batch:
        gen = torch.Generator(device=device).manual_seed(_mix(stream, 8))
        return draw(gen, val_size, side, device)

    return _module_task(name, steps, 0.0, device, lambda: SmallCNN(4, side=side), make_batch, make_val, _ce, stream)
