"""``@record(frozen=True, slots=True)``: a dataclass with slots, cheaper to define.

The standard ``@dataclass`` compiles six methods for each class as the class is defined,
about 0.7 ms a class: ``metric-reader test`` and ``check`` define some forty at every start,
a third of their time. ``record`` makes the same class with the methods that need no
compiling shared by all records (equality, hash, ``repr``, immutability, pickling) and its
``__init__`` compiled when the first instance is made, as ``dataclass`` writes it: a class
defined but never instantiated costs next to nothing, and instances are made as fast.

Type checkers see the standard decorator (the same semantics, checked as such), and the
class is a dataclass to the standard functions: ``dataclasses.fields``, ``replace``,
``asdict`` and ``is_dataclass`` work on it. Only ``slots=True`` classes are made, frozen or
not (``record(slots=True)``), without dataclass bases; ``tests/test_record.py`` holds them
to ``dataclass``.
"""

from __future__ import annotations

import dataclasses
import reprlib
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__all__ = ["record"]

if TYPE_CHECKING:
    from dataclasses import dataclass as record
else:

    def record(*, frozen: bool = False, slots: bool) -> Callable[[type], type]:
        if not slots:
            raise TypeError("record makes classes with slots only: use dataclass")
        return lambda cls: _make(cls, frozen)


_MISSING: Any = dataclasses.MISSING


class _FactorySentinel:
    def __repr__(self) -> str:
        return "<factory>"


_HAS_DEFAULT_FACTORY = _FactorySentinel()
"""The default of an ``__init__`` parameter whose field has a ``default_factory``."""


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str):  # ``from __future__ import annotations``
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return getattr(annotation, "__origin__", annotation) is typing.ClassVar


def _make(cls: type, frozen: bool) -> type:
    """The record made of the class ``cls`` as written: what ``dataclass`` would make."""
    for base in cls.__mro__[1:]:
        if "__dataclass_fields__" in base.__dict__:
            raise TypeError(f"{cls.__qualname__}: record has no dataclass bases")
    namespace = dict(cls.__dict__)
    fields: dict[str, dataclasses.Field[Any]] = {}
    defaulted = False
    for name, annotation in namespace.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        default = namespace.pop(name, _MISSING)
        field = (
            default
            if isinstance(default, dataclasses.Field)
            else dataclasses.field(default=default)
        )
        if type(field.default).__hash__ is None:  # as dataclass: a list, a dict, a set
            raise ValueError(
                f"mutable default {type(field.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        field.name = name
        field.type = annotation
        field._field_type = dataclasses._FIELD  # type: ignore[attr-defined,union-attr]
        if field.kw_only is _MISSING:
            field.kw_only = False
        if field.init:
            has_default = field.default is not _MISSING or field.default_factory is not _MISSING
            if defaulted and not has_default:
                raise TypeError(f"non-default argument {name!r} follows default argument")
            defaulted = defaulted or has_default
        fields[name] = field
    for taken in ("__setattr__", "__delattr__") if frozen else ():
        if taken in namespace:
            raise TypeError(f"Cannot overwrite attribute {taken} in class {cls.__name__}")
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace["__slots__"] = tuple(fields)
    namespace["__dataclass_fields__"] = fields
    compared = tuple(name for name, field in fields.items() if field.compare)
    hashed = tuple(
        name
        for name, field in fields.items()
        if (field.compare if field.hash is None else field.hash)
    )
    namespace["_record_compared"] = _getter(compared)
    namespace["_record_hashed"] = _getter(hashed)
    namespace["_record_shown"] = tuple(name for name, field in fields.items() if field.repr)
    own = set(namespace)
    namespace["_record_frozen"] = frozen
    if "__init__" not in own:
        namespace["__init__"] = _lazy_init()
    if "__repr__" not in own:
        namespace["__repr__"] = _repr
    if "__eq__" not in own:
        namespace["__eq__"] = _eq
    # dataclass(eq=True) makes a frozen class hashable by its fields and a mutable one
    # unhashable, unless the class wrote its hash itself (a class that writes only __eq__
    # has __hash__ = None, which does not count).
    explicit_hash = namespace.get("__hash__", _MISSING)
    if explicit_hash is _MISSING or (explicit_hash is None and "__eq__" in cls.__dict__):
        namespace["__hash__"] = _hash if frozen else None
    if frozen:
        namespace["__setattr__"] = _setattr
        namespace["__delattr__"] = _delattr
    if frozen and "__getstate__" not in own:
        namespace["__getstate__"] = _getstate
        namespace["__setstate__"] = _setstate
    if "__match_args__" not in own:
        namespace["__match_args__"] = tuple(
            name for name, field in fields.items() if field.init and not field.kw_only
        )
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The tuple of the ``names`` attributes of a record, as dataclass compares them."""
    if len(names) == 1:
        (only,) = names
        return lambda self: (getattr(self, only),)
    if not names:
        return lambda self: ()
    from operator import attrgetter

    return attrgetter(*names)


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._record_shown)
    return f"{self.__class__.__qualname__}({shown})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return self._record_compared(self) == self._record_compared(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self._record_hashed(self))


def _setattr(self: Any, name: str, value: object) -> None:
    if "_record_compared" in type(self).__dict__ or name in self.__dataclass_fields__:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: Any, name: str) -> None:
    if "_record_compared" in type(self).__dict__ or name in self.__dataclass_fields__:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, name) for name in self.__dataclass_fields__]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self.__dataclass_fields__, state, strict=False):
        object.__setattr__(self, name, value)


def _lazy_init() -> Callable[..., None]:
    """An ``__init__`` that compiles the class' own at its first call and hands over."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        owner = next(c for c in type(self).__mro__ if c.__dict__.get("__init__") is __init__)
        made = _compile_init(owner)
        owner.__init__ = made  # type: ignore[misc]
        made(self, *args, **kwargs)

    return __init__


def _compile_init(cls: type) -> Callable[..., None]:
    """The ``__init__`` dataclass writes for a class with slots."""
    frozen = cls.__dict__["_record_frozen"]
    globals_: dict[str, Any] = {
        "__object_setattr": object.__setattr__,
        "_HAS_DEFAULT_FACTORY": _HAS_DEFAULT_FACTORY,
    }
    parameters: list[str] = []
    body: list[str] = []
    fields: dict[str, dataclasses.Field[Any]] = cls.__dict__["__dataclass_fields__"]
    for name, field in fields.items():
        default = f"_dflt_{name}"
        if field.default_factory is not _MISSING:
            globals_[default] = field.default_factory
            if field.init:
                parameters.append(f"{name}=_HAS_DEFAULT_FACTORY")
                value = f"{default}() if {name} is _HAS_DEFAULT_FACTORY else {name}"
            else:
                value = f"{default}()"
        elif field.init:
            if field.default is _MISSING:
                parameters.append(name)
            else:
                globals_[default] = field.default
                parameters.append(f"{name}={default}")
            value = name
        elif field.default is not _MISSING:
            globals_[default] = field.default
            value = default
        else:
            continue
        if frozen:
            body.append(f"    __object_setattr(self, {name!r}, {value})")
        else:
            body.append(f"    self.{name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(parameters)}):\n" + ("\n".join(body) or "    pass")
    namespace: dict[str, Any] = {}
    exec(source, globals_, namespace)  # our own text, as dataclass does
    made: Callable[..., None] = namespace["__init__"]
    made.__qualname__ = f"{cls.__qualname__}.__init__"
    made.__annotations__ = {
        name: fields[name].type for name in made.__code__.co_varnames[1 : made.__code__.co_argcount]
    }
    made.__annotations__["return"] = None
    return made
