#!/usr/bin/env python3
"""Which tables and indexes the frames of a SQLite write-ahead log belong to.

    python3 bench/wal_pages.py DATABASE WAL_COPY

WAL_COPY is a copy of DATABASE's `-wal` file taken while the server ran (a server that stops
checkpoints the log and removes it). Each frame of the log is one page written by one commit
(the layout of SQLite's file format documentation, "The Write-Ahead Log": a 32-byte header,
then frames of a 24-byte header, whose first four bytes are the page number, and the page). The
page numbers are mapped to their b-tree with SQLite's `dbstat` table (through the `sqlite3`
command, whose build has it), read from copies of DATABASE and WAL_COPY with the log applied, and
the script prints, per commit, how many frames each b-tree got.
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import Counter


def frames(path):
    with open(path, "rb") as f:
        header = f.read(32)
        page_size = struct.unpack(">I", header[8:12])[0]
        salt = header[16:24]
        commit = []
        while True:
            frame = f.read(24)
            if len(frame) < 24:
                break
            page, size_after = struct.unpack(">II", frame[:8])
            f.seek(page_size, 1)
            if frame[8:16] != salt:
                # A frame left over from before the log restarted: not part of this log.
                break
            commit.append(page)
            if size_after:
                yield commit
                commit = []


def main():
    database, wal = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, "copy.db")
        shutil.copyfile(database, copy)
        shutil.copyfile(wal, copy + "-wal")
        listing = subprocess.run(
            ["sqlite3", copy, "SELECT name, pageno FROM dbstat"], capture_output=True, text=True, check=True
        ).stdout
    owner = {}
    for line in listing.splitlines():
        name, page = line.rsplit("|", 1)
        owner[int(page)] = name
    for n, commit in enumerate(frames(wal), 1):
        counts = Counter(owner.get(page, f"page {page} (free or new)") for page in commit)
        listing = ", ".join(f"{name} {k}" for name, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        print(f"commit {n}: {len(commit)} pages: {listing}")


if __name__ == "__main__":
    main()
