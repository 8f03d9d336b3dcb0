# An OpenEvolve-layout example: place points in the unit square to maximise their minimum distance.
import math
import random


# EVOLVE-BLOCK-START
def place_points(n):
    rng = random.Random(0)
    return [(rng.random(), rng.random()) for _ in range(n)]
# EVOLVE-BLOCK-END


def run():
    return place_points(8)
