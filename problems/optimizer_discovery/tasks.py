"""The training tasks of optimizer_discovery (harness 4). Each owns its data, model, loss, budget and seeds.

Every task ships with Python or scikit-learn, or is generated (nothing is downloaded), and gives a
functional view of its model: ``init_params(seed)``, ``loss(params, batch)``, ``make_batch(generator)``
for training and ``val_loss(params)`` for the trusted side, which the training loop vectorises over
learning rates with torch.func. A task's validation data is built only when its validation loss is
first asked for: the candidate's process, which trains, never builds it.

The tiers are independent (docs/problems.md has the table): ``select`` (the search fitness),
``validate`` (picks the champion) and ``heldout`` (report only) share no dataset, teacher, validation
set, batch stream or training seed, and the higher tiers add architecture families and parameter
shapes select never shows (a recurrent net, convolutional nets, a residual LayerNorm MLP, an
autoencoder) and a long-horizon task (1000 steps, over 5x select's). ``filter`` is a cheap gate.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial

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

    def val_loss(self, params: Params) -> torch.Tensor:
        if self._val is None:
            self._val = self.make_val()
        return self.loss(params, self._val)

    def batches(self, seed: int) -> torch.Generator:
        """The generator of this task's training batches for one training seed."""
        return torch.Generator(device=self.device).manual_seed(_mix(self.stream, seed))


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
    module = make_module().to(device)

    def init(seed: int) -> Params:
        torch.manual_seed(_mix(stream, seed, 1))  # initialisation drawn on the CPU: the same start on every device
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

    loader = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits}[name]
    x_np, y_np = loader(return_X_y=True)
    x = torch.tensor(x_np, dtype=torch.float32)
    y = torch.tensor(y_np, dtype=torch.long)
    perm = torch.randperm(len(x), generator=_fixed(0))
    x, y = x[perm], y[perm]
    n_val = len(x) // 4
    # Pixels share one scale: standardise them as a whole (per pixel, a pixel that is blank in every
    # training image but not in some validation image would be divided by ~0 and dominate the loss).
    # Breast-cancer features have different units: standardise each.
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


def _digits_mlp(width: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))


def _autoencoder() -> nn.Module:
    return nn.Sequential(
        nn.Linear(30, 16), nn.Tanh(), nn.Linear(16, 4), nn.Tanh(), nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 30)
    )


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
    torch.manual_seed(teacher_seed)
    out = 1 if kind == "reg" else classes
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
    torch.manual_seed(teacher_seed)
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


# -- the registry ------------------------------------------------------------------------------------
# Each task names its own batch stream (``stream``) and teacher seed: no two tasks share either.
TASKS: dict[str, Callable[..., Task]] = {
    # filter: a cheap gate
    "quadratic": partial(noisy_quadratic),
    "teacher_reg_small": partial(
        teacher,
        name="teacher_reg_small",
        kind="reg",
        stream=2,
        teacher_seed=11,
        din=8,
        teacher_width=16,
        width=32,
        depth=1,
        batch=32,
        steps=100,
        val_size=1024,
    ),
    # select: the search fitness
    "mlp_digits": partial(
        sk_task, name="mlp_digits", data="digits", steps=75, batch=32, make_module=_digits_mlp, stream=10
    ),
    "char_lm": partial(char_lm, name="char_lm", stream=11),
    "teacher_cls": partial(teacher, name="teacher_cls", kind="cls", stream=12, teacher_seed=7),
    # validate: picks the champion (other data, teachers, families and shapes)
    "char_lm_stdlib": partial(
        char_lm, name="char_lm_stdlib", stream=20, width=40, layers=2, steps=200, corpus="stdlib_a"
    ),
    "resmlp_cls": partial(
        teacher,
        name="resmlp_cls",
        kind="cls",
        stream=21,
        teacher_seed=17,
        din=24,
        width=96,
        depth=2,
        classes=8,
        steps=250,
        student="resmlp",
    ),
    "gru_seq": partial(sequence_teacher, name="gru_seq", stream=22, teacher_seed=19, steps=200),
    "cnn_bars": partial(image_task, name="cnn_bars", stream=23, images="bars", steps=200),
    # held out: report only (other data again, and a long horizon: 1000 steps)
    "teacher_reg_long": partial(
        teacher,
        name="teacher_reg_long",
        kind="reg",
        stream=30,
        teacher_seed=27,
        din=16,
        teacher_width=32,
        width=64,
        depth=2,
        batch=32,
        steps=1000,
    ),
    "char_lm_stdlib_b": partial(char_lm, name="char_lm_stdlib_b", stream=31, width=64, steps=200, corpus="stdlib_b"),
    "autoencoder": partial(
        sk_task,
        name="autoencoder",
        data="breast_cancer",
        steps=300,
        batch=32,
        make_module=_autoencoder,
        stream=32,
        reconstruct=True,
    ),
    "cnn_gratings": partial(image_task, name="cnn_gratings", stream=33, images="gratings", steps=200),
    # gpu suite: the same roles at 10-100x the size (a few to tens of seconds per candidate on one GPU)
    "char_lm_gpu": partial(
        char_lm,
        name="char_lm_gpu",
        stream=40,
        width=256,
        layers=4,
        heads=4,
        ctx=128,
        batch=32,
        steps=400,
        val_sequences=512,
    ),
    "teacher_cls_gpu": partial(
        teacher,
        name="teacher_cls_gpu",
        kind="cls",
        stream=41,
        teacher_seed=41,
        din=64,
        teacher_width=128,
        width=1024,
        depth=3,
        batch=512,
        steps=500,
        val_size=16384,
    ),
    "char_lm_gpu_deep": partial(
        char_lm,
        name="char_lm_gpu_deep",
        stream=42,
        width=384,
        layers=6,
        heads=6,
        ctx=256,
        batch=32,
        steps=600,
        val_sequences=512,
        corpus="stdlib_a",
    ),
    "resmlp_cls_gpu": partial(
        teacher,
        name="resmlp_cls_gpu",
        kind="cls",
        stream=43,
        teacher_seed=43,
        din=64,
        teacher_width=128,
        width=1024,
        depth=4,
        batch=1024,
        steps=800,
        val_size=16384,
        student="resmlp",
    ),
    "char_lm_gpu_w512": partial(
        char_lm,
        name="char_lm_gpu_w512",
        stream=44,
        width=512,
        layers=4,
        heads=8,
        ctx=128,
        batch=32,
        steps=400,
        val_sequences=512,
        corpus="stdlib_b",
    ),
    "teacher_reg_gpu_long": partial(
        teacher,
        name="teacher_reg_gpu_long",
        kind="reg",
        stream=45,
        teacher_seed=45,
        din=64,
        teacher_width=128,
        width=1024,
        depth=3,
        batch=512,
        steps=2500,
        val_size=16384,
    ),
}

SUITES: dict[str, dict[str, tuple[str, ...]]] = {
    "cpu": {
        "filter": ("quadratic", "teacher_reg_small"),
        "select": ("mlp_digits", "char_lm", "teacher_cls"),
        "validate": ("char_lm_stdlib", "resmlp_cls", "gru_seq", "cnn_bars"),
        "heldout": ("teacher_reg_long", "char_lm_stdlib_b", "autoencoder", "cnn_gratings"),
    },
    "gpu": {
        "filter": ("quadratic", "teacher_reg_small"),
        "select": ("char_lm_gpu", "teacher_cls_gpu"),
        "validate": ("char_lm_gpu_deep", "resmlp_cls_gpu"),
        "heldout": ("char_lm_gpu_w512", "teacher_reg_gpu_long"),
    },
}

# Training seeds per role, disjoint between the tiers: each tier trains from starts, and on batch
# streams, the others never saw. "validate" ranks; "confirm" re-scores the champion on fresh seeds.
SEEDS: dict[str, tuple[int, ...]] = {
    "filter": (0, 1, 2, 3, 4),
    "select": (0, 1, 2, 3, 4),
    "validate": (100, 101, 102),
    "confirm": (103, 104, 105),
    "heldout": (200, 201, 202),
}
ROLE_TASKS = {"confirm": "validate"}  # a role that trains on another role's tasks


def tasks_of(suite: str, role: str) -> tuple[str, ...]:
    return SUITES[suite][ROLE_TASKS.get(role, role)]


def task_steps(name: str) -> int:
    """A task's budget N, read from its definition (without building it on a device)."""
    spec = TASKS[name]
    if "steps" in spec.keywords:
        return int(spec.keywords["steps"])
    return int(inspect.signature(spec.func).parameters["steps"].default)


@cache
def get_task(name: str, device: str = "cpu") -> Task:
    return TASKS[name](torch.device(device))
