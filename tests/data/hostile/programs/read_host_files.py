import os
# The test plants files that hold "hunter2-host-file" in /root and in a home directory: a jail that
# binds the whole host read-only shows them.
PLANTED = ["/root/.evolve-hostile-secret", "/home/evolve-hostile/.ssh/id_ed25519"]
def search(f, dim, budget, rng):
    seen = []
    for path in PLANTED:
        try:
            with open(path, "rb") as fh:
                if b"hunter2-host-file" in fh.read():
                    seen.append(path)
        except OSError:
            pass
    for folder, name in (("/root", ".evolve-hostile-secret"), ("/home", "evolve-hostile")):
        try:
            if name in os.listdir(folder):
                seen.append(f"{folder}/{name} (listed)")
        except OSError:
            pass
    if seen:
        raise RuntimeError("LEAKED " + ", ".join(seen))
    return [0.0] * dim
