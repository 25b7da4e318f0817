#!/usr/bin/env python3
"""The disk's cost of a small durable write, in DIR: rounds of pwrite (4 KiB, in place, in a file
written and synced beforehand) + fdatasync, timed around the fdatasync; prints p50/p90/p99 in
microseconds, first for 500 rounds back to back, then for 200 rounds 5 ms apart.

A commit of the nodes' SQLite stores costs about one such call, so bench/api_bench.sh prints it
beside its figures: on this shared machine it moves between 0.07 ms and 0.65 ms from one day to
the next, and the release latencies with it (docs/perf.md). The second series is the pace of the
benchmark's one-client releases (a commit every 5 ms on Korea's node): on this virtual machine a
sync after an idle pause costs two to four times one that follows another at once (docs/perf.md,
seventeenth pass), and the release path pays that one.

Usage: bench/fsync_probe.py [DIR]   (default: the current directory)
"""
import os
import sys
import time

PAGE = 4096


def percentiles(took: list) -> str:
    took = sorted(took)
    pick = lambda q: took[int(len(took) * q)]
    return f"p50 {pick(0.5):.0f} µs, p90 {pick(0.9):.0f} µs, p99 {pick(0.99):.0f} µs"


def series(fd: int, rounds: int, pause_s: float) -> list:
    took = []
    for i in range(rounds):
        os.pwrite(fd, os.urandom(PAGE), (i % 64) * PAGE)
        start = time.perf_counter()
        os.fdatasync(fd)
        took.append((time.perf_counter() - start) * 1e6)
        if pause_s:
            time.sleep(pause_s)
    return took


def main() -> None:
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    path = os.path.join(directory, "fsync-probe.dat")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * PAGE * 64)
        os.fsync(fd)
        back_to_back = series(fd, 500, 0)
        paused = series(fd, 200, 0.005)
    finally:
        os.close(fd)
        os.unlink(path)
    print(f"fdatasync of 4 KiB: {percentiles(back_to_back)}; "
          f"5 ms apart: {percentiles(paused)}")


if __name__ == "__main__":
    main()
