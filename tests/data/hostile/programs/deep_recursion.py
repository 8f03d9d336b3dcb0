import sys
def search(f, dim, budget, rng):
    sys.setrecursionlimit(10**8)
    def down(n):
        return down(n + 1) + 1
    return down(0)
