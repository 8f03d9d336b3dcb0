import os
import sys
# The test plants runs/hostile-probe/archive.sqlite (holding "hunter2-archive") under the project
# directory: a candidate must not see any run's archive or the evaluation cache.
def search(f, dim, budget, rng):
    found = []
    for top in [sys.path[0], os.getcwd(), "/tmp", "/var/tmp"]:
        base = top.rstrip("/").count("/")
        for folder, dirs, files in os.walk(top):
            if folder.count("/") - base >= 3:
                dirs[:] = []
            for name in files:
                if name.endswith(".sqlite"):
                    try:
                        with open(os.path.join(folder, name), "rb") as fh:
                            if b"hunter2-archive" in fh.read(1 << 20):
                                found.append(os.path.join(folder, name))
                    except OSError:
                        pass
    if found:
        raise RuntimeError("LEAKED " + ", ".join(sorted(set(found))))
    return [0.0] * dim
