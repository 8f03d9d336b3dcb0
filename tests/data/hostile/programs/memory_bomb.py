def search(f, dim, budget, rng):
    blocks = []
    while True:
        blocks.append(bytearray(100 * 1024 * 1024))
