"""The training tasks of optimizer_discovery. Each owns its data, model, loss, budget and seeds.

Everything is CPU-feasible in seconds on one thread and ships with Python or scikit-learn, so
nothing is downloaded. A task gives a functional view of its model: ``init_params(seed)``,
``loss(params, batch)``, ``batch(seed, step)`` and ``val_loss(params)``, which the training loop
vectorises over learning rates with torch.func.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.func import functional_call

Params = dict[str, torch.Tensor]


@dataclass
class Task:
    name: str
    steps: int  # the budget N
    weight_decay: float
    module: nn.Module | None
    make_batch: Callable[[torch.Generator], tuple[torch.Tensor, ...]]
    loss_fn: Callable[[Params, tuple[torch.Tensor, ...]], torch.Tensor]
    val_fn: Callable[[Params], torch.Tensor]
    init_fn: Callable[[int], Params]

    def init_params(self, seed: int) -> Params:
        return self.init_fn(seed)

    def loss(self, params: Params, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.loss_fn(params, batch)

    def val_loss(self, params: Params) -> torch.Tensor:
        return self.val_fn(params)


def _module_task(name: str, steps: int, wd: float, make_module: Callable[[], nn.Module],
                 make_batch: Callable[[torch.Generator], tuple[torch.Tensor, ...]],
                 val_batch: tuple[torch.Tensor, ...],
                 criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Task:
    module = make_module()

    def init(seed: int) -> Params:
        torch.manual_seed(seed)
        m = make_module()
        return {k: v.detach().clone() for k, v in m.named_parameters()}

    def loss(params: Params, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, y = batch
        return criterion(functional_call(module, params, (x,)), y)

    def val(params: Params) -> torch.Tensor:
        return loss(params, val_batch)

    return Task(name, steps, wd, module, make_batch, loss, val, init)


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


# -- stage 1 -------------------------------------------------------------------------------------
def noisy_quadratic(dim: int = 100, steps: int = 200, noise: float = 0.3) -> Task:
    """The noisy quadratic model: 0.5 x'Hx, diagonal H over 3 decades, noisy gradients.

    Validation loss is the true (noise-free) loss. Axis-aligned curvature is the stylised case where
    per-coordinate preconditioning pays, as it does between the layers and units of a network.
    """
    eig = torch.logspace(-3, 0, dim)
    h = torch.diag(eig)

    def make_batch(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (noise * torch.randn(dim, generator=gen),)

    def loss(params: Params, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x = params["x"]
        return 0.5 * x @ h @ x + batch[0] @ x

    def val(params: Params) -> torch.Tensor:
        x = params["x"]
        return 0.5 * x @ h @ x

    def init(seed: int) -> Params:
        return {"x": torch.randn(dim, generator=torch.Generator().manual_seed(seed))}

    return Task("quadratic", steps, 0.0, None, make_batch, loss, val, init)


@lru_cache(maxsize=None)
def _sk_data(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn import datasets

    loader = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits,
              "wine": datasets.load_wine}[name]
    x, y = loader(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    n_val = len(x) // 4
    mean, std = x[n_val:].mean(0), x[n_val:].std(0) + 1e-6
    x = (x - mean) / std
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


def _sk_task(name: str, data: str, steps: int, batch: int, wd: float, make_module: Callable[[], nn.Module]) -> Task:
    xt, yt, xv, yv = _sk_data(data)

    def make_batch(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(len(xt), (batch,), generator=gen)
        return xt[idx], yt[idx]

    return _module_task(name, steps, wd, make_module, make_batch, (xv, yv), _ce)


def logreg_breast_cancer() -> Task:
    return _sk_task("logreg", "breast_cancer", 120, 16, 0.0, lambda: nn.Linear(30, 2))


# -- stage 2 -------------------------------------------------------------------------------------
def mlp_digits() -> Task:
    return _sk_task("mlp_digits", "digits", 250, 32, 0.0,
                    lambda: nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10)))


@lru_cache(maxsize=1)
def _corpus() -> tuple[torch.Tensor, int]:
    from pydoc_data.topics import topics

    text = "".join(topics[k] for k in sorted(topics))  # ~465K characters of Python's own docs
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long), 256


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
        mask = torch.ones(t, t, dtype=torch.bool).tril()
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


def char_lm(width: int = 32, steps: int = 150, ctx: int = 24, batch: int = 8, layers: int = 1,
            name: str = "char_lm") -> Task:
    ids, vocab = _corpus()
    split = int(0.9 * len(ids))
    train, val = ids[:split], ids[split:]
    vg = torch.Generator().manual_seed(99)
    starts = torch.randint(len(val) - ctx - 1, (64,), generator=vg)
    val_batch = (torch.stack([val[s:s + ctx] for s in starts]), torch.stack([val[s + 1:s + ctx + 1] for s in starts]))

    def make_batch(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        s = torch.randint(len(train) - ctx - 1, (batch,), generator=gen)
        return torch.stack([train[i:i + ctx] for i in s]), torch.stack([train[i + 1:i + ctx + 1] for i in s])

    return _module_task(name, steps, 0.01, lambda: CharLM(vocab, width, layers, 2, ctx), make_batch, val_batch, _ce)


# -- stage 3 (held out, never selected on) ---------------------------------------------------------
def teacher_student(steps: int = 200, width: int = 64) -> Task:
    """Regression onto a fixed random teacher network with a fresh batch every step: no overfitting."""
    torch.manual_seed(7)
    teacher = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 1))
    for p in teacher.parameters():
        p.requires_grad_(False)
    xv = torch.randn(512, 16, generator=torch.Generator().manual_seed(8))
    yv = teacher(xv)

    def make_batch(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        x = torch.randn(32, 16, generator=gen)
        return x, teacher(x)

    return _module_task("teacher_student", steps, 0.0,
                        lambda: nn.Sequential(nn.Linear(16, width), nn.ReLU(), nn.Linear(width, 1)),
                        make_batch, (xv, yv), nn.functional.mse_loss)


TASKS: dict[str, Callable[[], Task]] = {
    "quadratic": noisy_quadratic,
    "logreg": logreg_breast_cancer,
    "mlp_digits": mlp_digits,
    "char_lm": char_lm,
    "teacher_student": teacher_student,
    "char_lm_w64": lambda: char_lm(width=64, name="char_lm_w64"),
    "char_lm_w128": lambda: char_lm(width=128, name="char_lm_w128"),
}


@lru_cache(maxsize=None)
def get_task(name: str) -> Task:
    return TASKS[name]()
