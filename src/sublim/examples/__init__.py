"""Example task types and an execution node, bundled so that `sublim up` can show a real run."""
