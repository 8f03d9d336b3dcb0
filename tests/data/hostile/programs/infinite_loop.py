def search(f, dim, budget, rng):
    while True:
        pass
