"""The training tasks of optimizer_discovery. Each owns its data, model, loss, budget and seeds.

Every task ships with Python or scikit-learn (nothing is downloaded) and gives a functional view of
its model: ``init_params(seed)``, ``loss(params, batch)``, ``make_batch(generator)`` and
``val_loss(params)``, which the training loop vectorises over learning rates with torch.func.
A task is built on a device (``cpu`` by default); its data and parameters live there.

Tasks come in suites (``cpu``: seconds per candidate on one core; ``gpu``: larger models for one
accelerator), each mapping the four roles to tasks: ``filter`` (cheap gate), ``select`` (the search
fitness), ``validate`` (larger tasks that pick the champion) and ``heldout`` (report only).
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

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
    val_loss: Callable[[Params], torch.Tensor]
    init_params: Callable[[int], Params]


def _module_task(name: str, steps: int, wd: float, device: torch.device, make_module: Callable[[], nn.Module],
                 make_batch: Callable[[torch.Generator], Batch], val_batch: Batch,
                 criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Task:
    module = make_module().to(device)

    def init(seed: int) -> Params:
        torch.manual_seed(seed)  # initialisation is drawn on the CPU: the same start on every device
        m = make_module()
        return {k: v.detach().clone().to(device) for k, v in m.named_parameters()}

    def loss(params: Params, batch: Batch) -> torch.Tensor:
        x, y = batch
        return criterion(functional_call(module, params, (x,)), y)

    def val(params: Params) -> torch.Tensor:
        return loss(params, val_batch)

    return Task(name, steps, wd, device, make_batch, loss, val, init)


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _randint(high: int, size: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(high, (size,), generator=gen, device=gen.device)


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
        return 0.5 * (eig * x * x).sum() + batch[0] @ x

    def val(params: Params) -> torch.Tensor:
        x = params["x"]
        return 0.5 * (eig * x * x).sum()

    def init(seed: int) -> Params:
        return {"x": torch.randn(dim, generator=torch.Generator().manual_seed(seed)).to(device)}

    return Task("quadratic", steps, 0.0, device, make_batch, loss, val, init)


@cache
def _sk_data(name: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn import datasets

    loader = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits}[name]
    x_np, y_np = loader(return_X_y=True)
    x = torch.tensor(x_np, dtype=torch.float32)
    y = torch.tensor(y_np, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    n_val = len(x) // 4
    # Pixels share one scale: standardise them as a whole (per pixel, a pixel that is blank in every
    # training image but not in some validation image would be divided by ~0 and dominate the loss).
    # Breast-cancer features have different units: standardise each.
    mean = x[n_val:].mean(0)
    std = x[n_val:].std() if name == "digits" else x[n_val:].std(0)
    x = (x - mean) / std
    return x[n_val:].to(device), y[n_val:].to(device), x[:n_val].to(device), y[:n_val].to(device)


def sk_task(device: torch.device, name: str, data: str, steps: int, batch: int, make_module: Callable[[], nn.Module],
            wd: float = 0.0) -> Task:
    xt, yt, xv, yv = _sk_data(data, device)

    def make_batch(gen: torch.Generator) -> Batch:
        idx = _randint(len(xt), batch, gen)
        return xt[idx], yt[idx]

    return _module_task(name, steps, wd, device, make_module, make_batch, (xv, yv), _ce)


def _logreg() -> nn.Module:
    return nn.Linear(30, 2)


def _digits_mlp(width: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))


class DigitsCNN(nn.Module):
    """A small convolutional net on the 8x8 digits."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, channels, 3, padding=1)
        self.c2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.fc = nn.Linear(2 * channels * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu(self.c1(x.reshape(-1, 1, 8, 8)))
        x = nn.functional.max_pool2d(nn.functional.relu(self.c2(x)), 2)
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 2).flatten(1))


# -- character-level language models -----------------------------------------------------------------
@cache
def _corpus(source: str) -> torch.Tensor:
    """Byte ids of a text that ships with Python: its own documentation, or its standard library's source."""
    if source == "pydoc":
        from pydoc_data.topics import topics

        text = "".join(topics[k] for k in sorted(topics))  # ~465K characters of Python's own docs
    else:
        import sysconfig
        from pathlib import Path

        files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:60]
        text = "".join(f.read_text(errors="replace") for f in files)
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long)


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


def char_lm(device: torch.device, name: str, width: int = 32, steps: int = 150, ctx: int = 24, batch: int = 8,
            layers: int = 1, heads: int = 2, val_sequences: int = 256, corpus: str = "pydoc", wd: float = 0.01) -> Task:
    ids = _corpus(corpus).to(device)
    split = int(0.9 * len(ids))
    train, val = ids[:split], ids[split:]
    starts = torch.randint(len(val) - ctx - 1, (val_sequences,), generator=torch.Generator().manual_seed(99))
    offsets = torch.arange(ctx, device=device)

    def windows(data: torch.Tensor, s: torch.Tensor) -> Batch:
        at = s.to(device)[:, None] + offsets
        return data[at], data[at + 1]

    val_batch = windows(val, starts)

    def make_batch(gen: torch.Generator) -> Batch:
        return windows(train, _randint(len(train) - ctx - 1, batch, gen))

    return _module_task(name, steps, wd, device, lambda: CharLM(256, width, layers, heads, ctx), make_batch,
                        val_batch, _ce)


# -- teacher-student tasks: fresh batches every step (no overfitting) ----------------------------------
def teacher(device: torch.device, name: str, kind: str, din: int = 32, teacher_width: int = 64,
            width: int = 128, depth: int = 2, batch: int = 64, steps: int = 200, val_size: int = 4096,
            classes: int = 10) -> Task:
    """Regression onto (``kind="reg"``) or classification by (``"cls"``) a fixed random teacher network."""
    torch.manual_seed(7)
    out = 1 if kind == "reg" else classes
    net = nn.Sequential(nn.Linear(din, teacher_width), nn.Tanh(), nn.Linear(teacher_width, teacher_width), nn.Tanh(),
                        nn.Linear(teacher_width, out)).to(device)
    for p in net.parameters():
        p.requires_grad_(False)

    def target(x: torch.Tensor) -> torch.Tensor:
        y = net(x)
        return y if kind == "reg" else y.argmax(-1)

    xv = torch.randn(val_size, din, generator=torch.Generator().manual_seed(8)).to(device)
    val_batch = (xv, target(xv))

    def make_batch(gen: torch.Generator) -> Batch:
        x = torch.randn(batch, din, generator=gen, device=gen.device)
        return x, target(x)

    def student() -> nn.Module:
        layers: list[nn.Module] = []
        w = din
        for _ in range(depth):
            layers += [nn.Linear(w, width), nn.ReLU()]
            w = width
        return nn.Sequential(*layers, nn.Linear(w, out))

    criterion = nn.functional.mse_loss if kind == "reg" else _ce
    return _module_task(name, steps, 0.0, device, student, make_batch, val_batch, criterion)


# -- the registry ------------------------------------------------------------------------------------
TASKS: dict[str, Callable[..., Task]] = {
    # cpu suite
    "quadratic": partial(noisy_quadratic),
    "logreg": partial(sk_task, name="logreg", data="breast_cancer", steps=120, batch=16, make_module=_logreg),
    "mlp_digits": partial(sk_task, name="mlp_digits", data="digits", steps=150, batch=32, make_module=_digits_mlp),
    "char_lm": partial(char_lm, name="char_lm", ctx=32),
    "teacher_cls": partial(teacher, name="teacher_cls", kind="cls"),
    "char_lm_w48": partial(char_lm, name="char_lm_w48", width=48, ctx=32, batch=16, steps=200),
    "teacher_cls_deep": partial(teacher, name="teacher_cls_deep", kind="cls", width=192, depth=3, batch=128,
                                steps=250),
    "teacher_reg": partial(teacher, name="teacher_reg", kind="reg", din=16, teacher_width=32, width=64, depth=1,
                           batch=32),
    "cnn_digits": partial(sk_task, name="cnn_digits", data="digits", steps=200, batch=32, make_module=DigitsCNN),
    "char_lm_py": partial(char_lm, name="char_lm_py", layers=2, steps=200, corpus="stdlib"),
    "char_lm_w64": partial(char_lm, name="char_lm_w64", width=64),
    # gpu suite: the same roles at 10-100x the size (a few to tens of seconds per candidate on one GPU)
    "char_lm_gpu": partial(char_lm, name="char_lm_gpu", width=256, layers=4, heads=4, ctx=128, batch=32, steps=400,
                           val_sequences=512),
    "teacher_cls_gpu": partial(teacher, name="teacher_cls_gpu", kind="cls", din=64, teacher_width=128, width=1024,
                               depth=3, batch=512, steps=500, val_size=16384),
    "char_lm_gpu_deep": partial(char_lm, name="char_lm_gpu_deep", width=384, layers=6, heads=6, ctx=256, batch=32,
                                steps=600, val_sequences=512),
    "teacher_cls_gpu_wide": partial(teacher, name="teacher_cls_gpu_wide", kind="cls", din=64, teacher_width=128,
                                    width=2048, depth=4, batch=1024, steps=800, val_size=16384),
    # held out: a width-transfer pair (does the rule keep working as the model widens?) and a regression
    "char_lm_gpu_w128": partial(char_lm, name="char_lm_gpu_w128", width=128, layers=4, heads=4, ctx=128, batch=32,
                                steps=400, val_sequences=512, corpus="stdlib"),
    "char_lm_gpu_w512": partial(char_lm, name="char_lm_gpu_w512", width=512, layers=4, heads=8, ctx=128, batch=32,
                                steps=400, val_sequences=512, corpus="stdlib"),
    "teacher_reg_gpu": partial(teacher, name="teacher_reg_gpu", kind="reg", din=64, teacher_width=128, width=1024,
                               depth=3, batch=512, steps=500, val_size=16384),
}

SUITES: dict[str, dict[str, tuple[str, ...]]] = {
    "cpu": {
        "filter": ("quadratic", "logreg"),
        "select": ("mlp_digits", "char_lm", "teacher_cls"),
        "validate": ("char_lm_w48", "teacher_cls_deep"),
        "heldout": ("teacher_reg", "cnn_digits", "char_lm_py", "char_lm_w64"),
    },
    "gpu": {
        "filter": ("quadratic", "logreg"),
        "select": ("char_lm_gpu", "teacher_cls_gpu"),
        "validate": ("char_lm_gpu_deep", "teacher_cls_gpu_wide"),
        "heldout": ("char_lm_gpu_w128", "char_lm_gpu_w512", "teacher_reg_gpu"),
    },
}


# Bump a dataset's revision when how it is prepared changes (its tasks' cached curves are then remeasured).
DATA_REVISION = {"digits": 2, "breast_cancer": 1, "pydoc": 1, "stdlib": 1}


def task_signature(name: str) -> str:
    """A short hash of a task's definition: the cached AdamW curves are keyed by it."""
    spec = TASKS[name]
    args: dict[str, Any] = {k: getattr(v, "__name__", v) for k, v in sorted(spec.keywords.items())}
    data = args.get("data", args.get("corpus", "pydoc" if spec.func.__name__ == "char_lm" else None))
    text = f"{spec.func.__name__}:{sorted(args.items())}:data{DATA_REVISION.get(str(data), 0)}"
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def task_steps(name: str) -> int:
    """A task's budget N, read from its definition (without building it on a device)."""
    spec = TASKS[name]
    if "steps" in spec.keywords:
        return int(spec.keywords["steps"])
    return int(inspect.signature(spec.func).parameters["steps"].default)


@cache
def get_task(name: str, device: str = "cpu") -> Task:
    return TASKS[name](torch.device(device))
