"""Seed for function_min: a random local search over a box. Only search() evolves."""
import math
import random


# EVOLVE-BLOCK-START
def search(f, dim, budget, rng):
    x = [rng.uniform(-5.0, 5.0) for _ in range(dim)]
    fx = f(x)
    step = 3.0
    for i in range(budget - 1):
        cand = [xi + rng.gauss(0.0, step) for xi in x]
        fc = f(cand)
        if fc < fx:
            x = cand
            fx = fc
    return x
# EVOLVE-BLOCK-END
