"""Where things are in a YAML (or JSON) document: a path inside it -> its line, so policy and
scenario files can report errors at the line the user wrote."""

from __future__ import annotations

import yaml

__all__ = ["LineMap"]

_MAX_CUTS = 256


class LineMap:
    """Maps a path inside the document (``policies[0].rules[2].within``) to its line."""

    def __init__(self, node: yaml.Node | None) -> None:
        self._map: dict[str, int] = {}
        if node is not None:
            self._walk(node, "")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self._map.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else "?"
                sub = f"{path}.{key}" if path else str(key)
                self._walk(v, sub)
                self._map[sub] = k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, f"{path}[{i}]")

    def line(self, path: str) -> int | None:
        """The line of ``path``, or of its deepest prefix that has one (a missing key points
        at its parent). At most ``_MAX_CUTS`` parents are tried: each try hashes the path
        again, so a key of thousands of dotted parts would cost time quadratic in its length;
        past that the line of the document is given."""
        for _ in range(_MAX_CUTS):
            if not path:
                break
            if path in self._map:
                return self._map[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self._map.get("")
