import ctypes
import os
# Attach to the parent (the warm server) with ptrace, or open its memory for writing.
PTRACE_SEIZE, PTRACE_DETACH = 0x4206, 17
def search(f, dim, budget, rng):
    ppid = os.getppid()
    got = []
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(PTRACE_SEIZE, ppid, None, None) == 0:
        got.append("ptrace")
        libc.ptrace(PTRACE_DETACH, ppid, None, None)
    try:
        with open(f"/proc/{ppid}/mem", "r+b", buffering=0):
            got.append("mem")
    except OSError:
        pass
    if got:
        raise RuntimeError("ATTACHED to the server: " + ",".join(got))
    return [0.0] * dim
