#!/usr/bin/env python3
"""py_bench: Python's side of libmpool's benchmarks (issue 7).

    python3 py_bench.py [-q] ROW [same|split]   one round of row ROW
    python3 py_bench.py [-q] 8 create|apply|replace   row 8: forkserver
    python3 py_bench.py info                    python version, start method

Standard library only (multiprocessing). Prints "py key value" lines, the
same keys bench/mpbench prints for libmpool, so bench/run can put them side
by side. -q: smoke sizes. Row 4 has no Python side (its baseline is the
serial C job). The "fork" start method is used where the platform has it:
libmpool forks too, so the comparison is of the same mechanism (Python 3.14
changes the Linux default to forkserver, which would only flatter libmpool).
"""
import multiprocessing as mp
import os
import statistics
import sys
import time

QUICK = False


def ctx():
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else None)


def emit(key, value):
    print(f"py {key} {value:.6g}", flush=True)


def inner(full):
    return 1 if QUICK else full


def sq(x):
    return x * x


def echo(x):
    return x


def noop():
    return None


# ---- CPU placement for row 2 (the same choice bench/mpbench makes) ----

def two_cpus():
    """The first two CPUs this process may run on (one when there is one)."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[0], cpus[1] if len(cpus) > 1 else None


def pin_process(cpu):
    """Every thread of this process onto cpu (Linux: affinity is per thread,
    and Pool's handler threads already exist)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass


# ---- rows ----

def row_map():
    n = 20000 if QUICK else 1000000
    xs = list(range(n))
    with ctx().Pool(2) as pool:
        pool.map(sq, xs)  # warm up, as the C side does
        v = []
        for _ in range(inner(3)):
            t0 = time.perf_counter()
            out = pool.map(sq, xs)
            v.append(n / (time.perf_counter() - t0))
            assert out[n - 1] == (n - 1) * (n - 1)
    emit("items_per_s", statistics.median(v))


def row_apply(mode):
    n = 100 if QUICK else (1000 if mode == "same" else 300)
    a, b = two_cpus()
    if mode == "same":
        pin_process(a)
    elif mode == "split":
        if b is None:
            return
        pin_process(b)
    with ctx().Pool(2) as pool:
        if mode == "split":
            pin_process(a)  # the workers stay on b
        apply_rounds(pool, n)


def apply_rounds(pool, n):
    """Warm pool up, then emit the median microseconds per apply."""
    for _ in range(100):
        pool.apply(echo, (42,))
    v = []
    for _ in range(inner(3)):
        t0 = time.perf_counter()
        for _ in range(n):
            pool.apply(echo, (42,))
        v.append((time.perf_counter() - t0) / n * 1e6)
    emit("us", statistics.median(v))


def row_process():
    n = 5 if QUICK else 50
    c = ctx()
    v = []
    for _ in range(inner(3)):
        t0 = time.perf_counter()
        for _ in range(n):
            p = c.Process(target=noop)
            p.start()
            p.join()
            assert p.exitcode == 0
        v.append((time.perf_counter() - t0) / n * 1e6)
    emit("us", statistics.median(v))


def row_stream():
    n = 8 if QUICK else 64
    size = 1 << 20
    base = bytearray(size)
    items = [bytes(base) for _ in range(n)]  # distinct objects: no pickle memo
    with ctx().Pool(2) as pool:
        pool.map(len, items[:8])
        v = []
        for _ in range(inner(3)):
            t0 = time.perf_counter()
            out = pool.map(len, items)
            v.append(n * size / (time.perf_counter() - t0) / 1e6)
            assert out == [size] * n
    emit("mb_per_s", statistics.median(v))


def row_pool_life(c=None):
    n = 2 if QUICK else 10
    c = c or ctx()
    v = []
    for _ in range(inner(3)):
        t0 = time.perf_counter()
        for _ in range(n):
            pool = c.Pool(2)
            pool.close()
            pool.join()
        v.append((time.perf_counter() - t0) / n * 1e3)
    emit("ms", statistics.median(v))


def row_replace(c=None):
    n = 5 if QUICK else 30
    c = c or ctx()
    v = []
    for _ in range(inner(3)):
        with c.Pool(1, maxtasksperchild=1) as pool:
            t0 = time.perf_counter()
            out = pool.map(sq, range(n), chunksize=1)
            v.append((time.perf_counter() - t0) / n * 1e6)
            assert out[n - 1] == (n - 1) * (n - 1)
    emit("us", statistics.median(v))


# ---- the data rows (issue 13) ----

def crc(line):
    import zlib
    return zlib.crc32(line)


def row_lines_stream(mode=None):
    """8: Pool(2).imap over the lines `seq 1 n` writes into a pipe,
    chunksize 10000, a cheap hash each, each hash printed (to /dev/null);
    lines/s and this process's peak RSS. Mode "lb" (row 8b): each hash
    its own write, line-buffered, as printed to a terminal."""
    import resource
    n = 50000 if QUICK else 5000000
    import subprocess
    with ctx().Pool(2) as pool:
        seq = subprocess.Popen(["seq", "1", str(n)], stdout=subprocess.PIPE)
        got = 0
        with open("/dev/null", "w", buffering=1 if mode == "lb" else -1) as out:
            t0 = time.perf_counter()
            for h in pool.imap(crc, seq.stdout, chunksize=10000):
                out.write(f"{h:08x}\n")
                got += 1
            t = time.perf_counter() - t0
        seq.stdout.close()
        seq.wait()
    assert got == n
    emit("lines_per_s", n / t)
    emit("rss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def xform(line):
    return line.upper() * (len(line) % 3 + 1)


def row_lines_strings():
    """9: 20,000 lines to new strings of other lengths, Pool(2).imap with
    chunksize 100; lines/s."""
    n = 2000 if QUICK else 20000
    words = "with words that make lengths vary ok"
    lines = [f"line {i} of the text, {words[:(i * 7) % 40]}".encode()
             for i in range(n)]
    rates = []
    with ctx().Pool(2) as pool:
        for _ in range(inner(3)):
            t0 = time.perf_counter()
            out = list(pool.imap(xform, lines, chunksize=100))
            rates.append(n / (time.perf_counter() - t0))
            assert len(out) == n
    emit("lines_per_s", statistics.median(rates))


# ---- rows 12a-12c: Python's forkserver (Python 3.14's default on Linux) ----

def fs_ctx():
    return mp.get_context("forkserver")


def row_forkserver(part):
    c = fs_ctx()
    # The server is started once per program, by its first pool: start it
    # before timing, so each pool below costs only its own workers.
    with c.Pool(1) as pool:
        pool.apply(noop)
    if part == "create":
        row_pool_life(c)
    elif part == "apply":
        pin_process(two_cpus()[0])
        with c.Pool(2) as pool:
            apply_rounds(pool, 100 if QUICK else 1000)
    else:
        row_replace(c)


def info():
    print("python", sys.version.split()[0])
    print("start_method", ctx().get_start_method())


def main(argv):
    global QUICK
    args = argv[1:]
    if args and args[0] == "-q":
        QUICK = True
        args = args[1:]
    if not args:
        print("usage: py_bench.py [-q] {1,2,3,5,6,7,8,9,fs,info} "
              "[same|split|create|apply|replace]",
              file=sys.stderr)
        return 2
    row, mode = args[0], (args[1] if len(args) > 1 else None)
    rows = {"1": row_map, "3": row_process, "5": row_stream,
            "6": row_pool_life, "7": row_replace, "8": row_lines_stream,
            "9": row_lines_strings, "info": info}
    if row == "2":
        row_apply(mode)
    elif row == "fs":
        row_forkserver(mode)
    elif row == "8":
        row_lines_stream(mode)
    elif row in rows:
        rows[row]()
    else:
        print(f"py_bench: no row {row}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
