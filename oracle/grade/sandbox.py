"""Running a learner's code apart from check itself: in a child process forked from this one, so it
sees everything already built here (the batches, autograd's answers) and sends its results back
as it goes. Whatever the code does (loop forever, sleep, allocate without bound, exit, change the
working directory, write files, change torch's settings) stays in the child: it runs in a fresh
temporary directory with its memory capped and its output discarded, and it is stopped after
`timeout` seconds."""
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

from oracle._userfile import cap_memory

TIMEOUT = 10.0  # seconds the code of one exercise may run, all its batches together (--timeout)
MEMORY = 2**30  # bytes it may take beyond what check holds: the exercises need a few MB


class Tick:
    """A message from the child that says how far it has come (for progress), not a result."""

    def __init__(self, done):
        self.done = done


def run_apart(work, timeout, progress=None):
    """Call work(send) in a forked child; send(obj) hands a picklable obj back (a Tick goes to
    progress(done) instead). Returns (the objects sent, in order; None, or why the child stopped
    before finishing: "stopped after 10 s", "the code ended the process (exit status 3)")."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    room = tempfile.mkdtemp(prefix="numpy-ninja-check-")
    child = context.Process(target=_child, args=(work, send, room), daemon=True)
    child.start()
    send.close()
    results, stopped, deadline = [], None, time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not receive.poll(left):  # poll is also true at the end of the pipe
                stopped = f"stopped after {timeout:g} s (--timeout)"
                break
            try:
                message = receive.recv()
            except EOFError:  # it ended without saying it was done
                child.join()
                stopped = _died(child.exitcode)
                break
            if isinstance(message, _Crash):
                raise RuntimeError(f"check failed while running the learner's code: {message.text}")
            if message == _DONE:
                break
            if isinstance(message, Tick):
                if progress is not None:
                    progress(message.done)
                continue
            results.append(message)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
        shutil.rmtree(room, ignore_errors=True)
    return results, stopped


_DONE = "numpy-ninja: done"


class _Crash:
    """check's own failure in the child (not the learner's: work() catches what their code raises)."""

    def __init__(self, text):
        self.text = text


def _died(exitcode):
    if exitcode < 0:
        return f"the code was killed by signal {-exitcode}"
    return f"the code ended the process (exit status {exitcode})"


def _child(work, send, room):
    torch = sys.modules.get("torch")
    if torch is not None:  # a thread pool the parent started does not survive fork(): one thread
        torch.set_num_threads(1)
    os.chdir(room)
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):  # what the code prints, also from C, goes nowhere
        os.dup2(devnull, fd)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    cap_memory(MEMORY)
    try:
        work(send.send)
    except Exception:
        import traceback
        send.send(_Crash(traceback.format_exc(limit=-3)))
    send.send(_DONE)
    send.close()
    os._exit(0)  # no atexit handler of the parent's runs here
