import os
# Write 16 MB files into /tmp and the working directory until something says no (or 2 GB).
def search(f, dim, budget, rng):
    chunk = b"x" * (16 * 1024 * 1024)
    written = 0
    for folder in ("/tmp", os.getcwd()):
        for i in range(64):
            try:
                with open(os.path.join(folder, f"fill-{i}.bin"), "wb") as fh:
                    fh.write(chunk)
                written += len(chunk)
            except OSError:
                break
    if written > 1024 * 1024 * 1024:
        raise RuntimeError(f"WROTE {written >> 20} MB")
    return [0.0] * dim
