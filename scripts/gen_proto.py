#!/usr/bin/env python3
"""Regenerate the datastore's Python modules from its .proto (with grpc_tools.protoc).

    python scripts/gen_proto.py            rewrite src/sublim/datastore/datastore_pb2*.py(i)
    python scripts/gen_proto.py --out DIR  write them under DIR instead (the freshness test)

The generated modules are committed; a test fails when they differ from a fresh generation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ROOT = ROOT / "src"
PROTO = Path("sublim/datastore/datastore.proto")


def generate(out_root: Path) -> list[Path]:
    """Write the generated modules under `out_root` (mirroring `src/`); return their paths."""
    out_root.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={SOURCE_ROOT}",
        f"--proto_path={include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        str(SOURCE_ROOT / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO}")
    return sorted((out_root / PROTO.parent).glob("datastore_pb2*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SOURCE_ROOT, help="root to write under")
    for path in generate(parser.parse_args().out):
        print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
