"""Which tasks exist, which tier each belongs to, and the seeds each tier trains on (harness 4).

The tiers are independent (docs/problems.md has the table): ``select`` (the search fitness),
``validate`` (picks the champion) and ``heldout`` (report only) share no dataset, teacher, validation
set, batch stream or training seed, and the higher tiers add architecture families and parameter
shapes select never shows (a recurrent net, convolutional nets, a residual LayerNorm MLP, an
autoencoder) and long horizons (validate 800 steps, held-out 1000: 4x and 5x select's longest).
``filter`` is a cheap gate.

This registry is configuration, kept apart from the tasks' code (``tasks``): a tuned-AdamW curve is keyed
by its task's keyword arguments and the source of ``tasks`` and the training loop, so adding a task or
moving one between tiers measures only the curves that changed.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from functools import cache, partial

import torch

from problems.optimizer_discovery.tasks import (
    Task,
    autoencoder_net,
    char_lm,
    digits_mlp,
    image_task,
    noisy_quadratic,
    sequence_teacher,
    sk_task,
    teacher,
    wine_autoencoder,
)

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
        sk_task, name="mlp_digits", data="digits", steps=75, batch=32, make_module=digits_mlp, stream=10
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
    # a long horizon (800 steps, 4x select's longest), as held-out has: the tier that picks the champion
    # must see every axis the report judges it on
    "teacher_reg_deep_long": partial(
        teacher,
        name="teacher_reg_deep_long",
        kind="reg",
        stream=24,
        teacher_seed=29,
        din=12,
        teacher_width=24,
        width=48,
        depth=3,
        batch=32,
        steps=800,
    ),
    # every family select or held-out shows has a validate task of its own data, so that the tier picking
    # the champion is not decided by the one or two families it lacks: an autoencoder of other features,
    # and a plain deep MLP classifier of another teacher
    "autoencoder_wine": partial(
        sk_task,
        name="autoencoder_wine",
        data="wine",
        steps=300,
        batch=16,
        make_module=wine_autoencoder,
        stream=25,
        reconstruct=True,
    ),
    "teacher_cls_deep": partial(
        teacher,
        name="teacher_cls_deep",
        kind="cls",
        stream=26,
        teacher_seed=31,
        din=20,
        teacher_width=48,
        width=64,
        depth=4,
        classes=6,
        steps=300,
    ),
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
        make_module=autoencoder_net,
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
        "validate": (
            "char_lm_stdlib",
            "resmlp_cls",
            "gru_seq",
            "cnn_bars",
            "teacher_reg_deep_long",
            "autoencoder_wine",
            "teacher_cls_deep",
        ),
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


_BUILDING = threading.Lock()


def get_task(name: str, device: str = "cpu") -> Task:
    """The one task of that name on that device in this process (built once, whichever thread asks first)."""
    with _BUILDING:
        return _built(name, device)


@cache
def _built(name: str, device: str) -> Task:
    return TASKS[name](torch.device(device))
