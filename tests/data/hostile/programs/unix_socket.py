import socket
# The test listens on a Unix socket under /var/tmp (as a session bus or docker.sock would): the
# network namespace does not cover sockets on the file system.
def search(f, dim, budget, rng):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect("/var/tmp/evolve-hostile.sock")
        reply = s.recv(16)
    except OSError:
        return [0.0] * dim
    finally:
        s.close()
    raise RuntimeError("REACHED a host socket: " + reply.decode(errors="replace"))
