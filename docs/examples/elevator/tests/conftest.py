"""The plugin's tests run against the installed plugin (``pip install -e .`` first). From a
checkout where it is not installed (``pytest docs/examples`` in policykit's repository),
they are not collected: its events and pack would be unknown."""

import importlib.util

if importlib.util.find_spec("policykit_elevator") is None:
    collect_ignore_glob = ["test_*"]
