#!/usr/bin/env python3
"""The disk's cost of a small durable write: 500 rounds of pwrite (4 KiB, in place, in a file
written and synced beforehand) + fdatasync, in DIR; prints p50/p90/p99 in microseconds.

A commit of the nodes' SQLite stores costs about one such call, so bench/api_bench.sh prints it
beside its figures: on this shared machine it moves between 0.07 ms and 0.65 ms from one day to
the next, and the release latencies with it (docs/perf.md).

Usage: bench/fsync_probe.py [DIR]   (default: the current directory)
"""
import os
import sys
import time

ROUNDS = 500
PAGE = 4096


def main() -> None:
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    path = os.path.join(directory, "fsync-probe.dat")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * PAGE * 64)
        os.fsync(fd)
        took = []
        for i in range(ROUNDS):
            os.pwrite(fd, os.urandom(PAGE), (i % 64) * PAGE)
            start = time.perf_counter()
            os.fdatasync(fd)
            took.append((time.perf_counter() - start) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    pick = lambda q: took[int(len(took) * q)]
    print(f"fdatasync of 4 KiB: p50 {pick(0.5):.0f} µs, p90 {pick(0.9):.0f} µs, p99 {pick(0.99):.0f} µs")


if __name__ == "__main__":
    main()
