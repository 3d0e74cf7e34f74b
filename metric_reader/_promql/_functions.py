"""PromQL's functions by name (a stand-in: the functions are written apart)."""

from ._values import Function

FUNCTIONS: dict[str, Function] = {}
