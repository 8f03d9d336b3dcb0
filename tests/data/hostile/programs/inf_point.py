def search(f, dim, budget, rng):
    return [float("inf")] * dim
