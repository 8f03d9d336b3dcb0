def search(f, dim, budget, rng):
    for path in ["/work/evolve-hostile-was-here", "/root/evolve-hostile-was-here",
                 "/var/tmp/evolve-hostile-was-here", "/etc/evolve-hostile-was-here"]:
        try:
            with open(path, "w") as fh:
                fh.write("x")
        except OSError:
            continue
        raise RuntimeError("WROTE " + path)
    return [0.0] * dim
