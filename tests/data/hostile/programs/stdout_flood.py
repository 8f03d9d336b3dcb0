import sys
def search(f, dim, budget, rng):
    while True:  # past the file-size limit the write fails: the program ends, the disk does not fill
        sys.stdout.write("flood" * 1_000_000)
