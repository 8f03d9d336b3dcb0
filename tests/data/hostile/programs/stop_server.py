import os
import signal
import time
# Stop the parent (the warm server) and hang: the controller must still return at the deadline.
def search(f, dim, budget, rng):
    os.kill(os.getppid(), signal.SIGSTOP)
    time.sleep(3600)
