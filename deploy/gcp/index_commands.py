#!/usr/bin/env python3
"""Print the gcloud commands that create what firestore.indexes.json declares.

    python3 deploy/gcp/index_commands.py deploy/gcp/firestore.indexes.json --database "(default)"

One command per line, its arguments separated by single spaces (none contains a space), for
`deploy.sh` to run: composite indexes (`gcloud firestore indexes composite create --async`)
and single-field exemptions (`gcloud firestore indexes fields update --disable-indexes`).
Standard library only: it runs wherever the deployment script runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def field_config(field: dict[str, str]) -> str:
    if "arrayConfig" in field:
        return f"--field-config=field-path={field['fieldPath']},array-config=contains"
    return f"--field-config=field-path={field['fieldPath']},order={field['order'].lower()}"


def composite_command(index: dict[str, Any], database: str) -> list[str]:
    return [
        "firestore",
        "indexes",
        "composite",
        "create",
        f"--database={database}",
        f"--collection-group={index['collectionGroup']}",
        f"--query-scope={index['queryScope'].lower().replace('_', '-')}",
        *(field_config(field) for field in index["fields"]),
        "--async",
    ]


def exemption_command(override: dict[str, Any], database: str) -> list[str]:
    return [
        "firestore",
        "indexes",
        "fields",
        "update",
        override["fieldPath"],
        f"--database={database}",
        f"--collection-group={override['collectionGroup']}",
        "--disable-indexes",
        "--async",
    ]


def commands(declared: dict[str, Any], database: str) -> list[list[str]]:
    composite = [composite_command(index, database) for index in declared["indexes"]]
    exempt = [exemption_command(o, database) for o in declared.get("fieldOverrides", [])]
    return composite + exempt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("indexes_file", type=Path)
    parser.add_argument("--database", default="(default)")
    args = parser.parse_args()
    declared = json.loads(args.indexes_file.read_text())
    for command in commands(declared, args.database):
        print(" ".join(command))


if __name__ == "__main__":
    main()
