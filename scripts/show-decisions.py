#!/usr/bin/env python3
"""Prints `accord decide` answers (JSON Lines on stdin) as a table a person reads at a glance."""
import json
import sys

for line in sys.stdin:
    d = json.loads(line)
    m = d.get("marking") or {}
    marking = f" → {m['level']} for {m['party']}" if m else ""
    why = d.get("error") or (d.get("explain") or [""])[0]
    ident = "(no id)" if d['id'] is None else str(d['id'])
    print(f"{ident:22} {d['decision']:5} {d['reason']:22} {d['agreement'] or '':16}{marking}")
    print(f"{'':22} {why}")
