"""evolve's stand-in for the parts of ShinkaEvolve a problem's evaluate.py imports."""
