"""``@record(frozen=True, slots=True)``: a dataclass with slots, cheaper to define.

The standard ``@dataclass`` compiles six methods for each class as the class is defined,
about 0.7 ms a class: ``metric-reader test`` and ``check`` define some forty at every start,
a third of their time. ``record`` makes the same class with the methods that need no
compiling shared by all records (equality, hash, ``repr``, immutability, pickling) and its
``__init__`` compiled when the first instance is made, as ``dataclass`` writes it: a class
defined but never instantiated costs next to nothing, and instances are made as fast.

Nor does it import ``dataclasses`` (which imports ``inspect``, ``ast``, ``dis`` and
``tokenize``: 10 ms, a sixth of a ``check --no-read``): each field is described by a light
``_Field``, its options given by ``record_field`` where ``dataclass`` takes ``field``, and a
record is copied with changes by ``record_replace``. The class is still a dataclass to the
standard functions: its ``__dataclass_fields__`` are the real ``dataclasses.Field``, made
when first asked for (by ``dataclasses.fields``, ``replace``, ``asdict``, ``is_dataclass``,
which import ``dataclasses`` anyway). A ``dataclasses.field(...)`` default is taken too.

Type checkers see the standard ``dataclass``, ``field`` and ``replace`` (the same semantics,
checked as such). Only ``slots=True`` classes are made, frozen or not
(``record(slots=True)``), without dataclass bases nor keyword-only fields;
``tests/test_record.py`` holds them to ``dataclass``.
"""

from __future__ import annotations

import reprlib
import sys
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

__all__ = ["record", "record_field", "record_replace"]

_T = TypeVar("_T")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()
"""No default, no factory: ``dataclasses.MISSING`` in the real fields."""


class _FactorySentinel:
    def __repr__(self) -> str:
        return "<factory>"


_HAS_DEFAULT_FACTORY = _FactorySentinel()
"""The default of an ``__init__`` parameter whose field has a ``default_factory``."""


class _Field:
    """A field of a record: what ``dataclasses.Field`` says of it, without ``dataclasses``.
    Made by ``record_field``, which takes ``dataclasses.field``'s options (``kw_only``
    aside)."""

    __slots__ = (
        "compare",
        "default",
        "default_factory",
        "hash",
        "init",
        "metadata",
        "name",
        "real",
        "repr",
        "type",
    )

    def __init__(
        self,
        *,
        default: Any = _MISSING,
        default_factory: Any = _MISSING,
        init: bool = True,
        repr: bool = True,  # dataclasses.field's names
        hash: bool | None = None,
        compare: bool = True,
        metadata: Mapping[Any, Any] | None = None,
    ) -> None:
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.hash = hash
        self.compare = compare
        self.metadata = metadata
        self.name = ""
        self.type: Any = None
        self.real: Any = None
        """The ``dataclasses.Field`` the class was written with, if it was."""

    def __repr__(self) -> str:
        return (
            f"record_field(default={self.default!r}, default_factory={self.default_factory!r}, "
            f"init={self.init!r}, repr={self.repr!r}, hash={self.hash!r}, "
            f"compare={self.compare!r}, metadata={self.metadata!r})"
        )


def _replace(obj: _T, /, **changes: Any) -> _T:
    """``dataclasses.replace``: a record like ``obj`` but for ``changes``."""
    fields: dict[str, _Field] | None = getattr(type(obj), "_record_fields", None)
    if fields is None:  # a dataclass
        import dataclasses

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    for name, field in fields.items():
        if not field.init:
            if name in changes:
                raise ValueError(
                    f"field {name} is declared with init=False, it cannot be specified with "
                    "replace()"
                )
        elif name not in changes:
            changes[name] = getattr(obj, name)
    return obj.__class__(**changes)


if TYPE_CHECKING:
    from dataclasses import dataclass as record
    from dataclasses import field as record_field
    from dataclasses import replace as record_replace
else:

    def record(*, frozen: bool = False, slots: bool) -> Callable[[type], type]:
        if not slots:
            raise TypeError("record makes classes with slots only: use dataclass")
        return lambda cls: _make(cls, frozen)

    record_field = _Field
    record_replace = _replace


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str):  # ``from __future__ import annotations``
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return getattr(annotation, "__origin__", annotation) is typing.ClassVar


def _field_of(name: str, annotation: Any, default: Any) -> _Field:
    """The field ``name`` as the class writes it: ``default`` may be a value, a
    ``record_field`` or a ``dataclasses.field``."""
    if isinstance(default, _Field):
        field = default
    else:
        dataclasses = sys.modules.get("dataclasses")  # no Field made without it
        if dataclasses is not None and isinstance(default, dataclasses.Field):
            if default.kw_only is True:
                raise TypeError(f"field {name}: record has no keyword-only fields")
            default.name = name
            default.type = annotation
            default._field_type = dataclasses._FIELD
            default.kw_only = False
            missing = dataclasses.MISSING
            field = _Field(
                default=_MISSING if default.default is missing else default.default,
                default_factory=(
                    _MISSING if default.default_factory is missing else default.default_factory
                ),
                init=default.init,
                repr=default.repr,
                hash=default.hash,
                compare=default.compare,
                metadata=default.metadata,
            )
            field.real = default
        else:
            field = _Field(default=default)
    field.name = name
    field.type = annotation
    return field


class _DataclassFields:
    """A record's ``__dataclass_fields__``: the real ``dataclasses.Field`` of each of its
    fields, made (importing ``dataclasses``) when first asked for, then kept on the class
    in its place."""

    __slots__ = ("owner",)

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner = owner

    def __get__(self, instance: object, owner: type | None = None) -> dict[str, Any]:
        import dataclasses

        made: dict[str, Any] = {}
        fields: dict[str, _Field] = self.owner.__dict__["_record_fields"]
        for name, field in fields.items():
            real: Any = field.real
            if real is None:
                real = dataclasses.field(
                    default=dataclasses.MISSING if field.default is _MISSING else field.default,
                    default_factory=(
                        dataclasses.MISSING
                        if field.default_factory is _MISSING
                        else field.default_factory
                    ),
                    init=field.init,
                    repr=field.repr,
                    hash=field.hash,
                    compare=field.compare,
                    metadata=field.metadata,
                    kw_only=False,
                )
                real.name = name
                real.type = field.type
                real._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
            made[name] = real
        type.__setattr__(self.owner, "__dataclass_fields__", made)  # kept in its place
        return made


def _make(cls: type, frozen: bool) -> type:
    """The record made of the class ``cls`` as written: what ``dataclass`` would make."""
    for base in cls.__mro__[1:]:
        if "__dataclass_fields__" in base.__dict__:
            raise TypeError(f"{cls.__qualname__}: record has no dataclass bases")
    namespace = dict(cls.__dict__)
    annotations = namespace.get("__annotations__", {})
    fields: dict[str, _Field] = {}
    defaulted = False
    for name, annotation in annotations.items():
        if _is_classvar(annotation):
            continue
        field = _field_of(name, annotation, namespace.pop(name, _MISSING))
        if type(field.default).__hash__ is None:  # as dataclass: a list, a dict, a set
            raise ValueError(
                f"mutable default {type(field.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        if field.init:
            has_default = field.default is not _MISSING or field.default_factory is not _MISSING
            if defaulted and not has_default:
                raise TypeError(f"non-default argument {name!r} follows default argument")
            defaulted = defaulted or has_default
        fields[name] = field
    for name, value in namespace.items():
        if name not in annotations and _is_a_field(value):
            raise TypeError(f"{name!r} is a field but has no type annotation")
    for taken in ("__setattr__", "__delattr__") if frozen else ():
        if taken in namespace:
            raise TypeError(f"Cannot overwrite attribute {taken} in class {cls.__name__}")
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace["__slots__"] = tuple(fields)
    namespace["_record_fields"] = fields
    namespace["__dataclass_fields__"] = _DataclassFields()
    compared = tuple(name for name, field in fields.items() if field.compare)
    hashed = tuple(
        name
        for name, field in fields.items()
        if (field.compare if field.hash is None else field.hash)
    )
    namespace["_record_compared"] = staticmethod(_getter(compared))  # not a method: a
    namespace["_record_hashed"] = staticmethod(_getter(hashed))  # lambda would be one
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
        namespace["__match_args__"] = tuple(name for name, field in fields.items() if field.init)
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made


def _is_a_field(value: object) -> bool:
    if isinstance(value, _Field):
        return True
    dataclasses = sys.modules.get("dataclasses")
    return dataclasses is not None and isinstance(value, dataclasses.Field)


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
    if "_record_compared" in type(self).__dict__ or name in self._record_fields:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: Any, name: str) -> None:
    if "_record_compared" in type(self).__dict__ or name in self._record_fields:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, name) for name in self._record_fields]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self._record_fields, state, strict=False):
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
    fields: dict[str, _Field] = cls.__dict__["_record_fields"]
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
