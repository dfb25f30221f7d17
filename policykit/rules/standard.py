"""Where the standard pack used to live: it is :mod:`policykit.pack` now. Kept so that
``from policykit.rules.standard import standard_pack`` keeps working, with a
DeprecationWarning naming the new place; the names are looked up on first use, so
importing :mod:`policykit.rules` still never imports the policy layer."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..pack import PACK_ORDER, standard_pack

__all__ = ["PACK_ORDER", "standard_pack"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from .. import pack

        warnings.warn(f"policykit.rules.standard is deprecated: import {name} from "
                      "policykit.pack (standard_pack also from policykit)",
                      DeprecationWarning, stacklevel=2)
        return getattr(pack, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
