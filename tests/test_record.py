"""``record(frozen=True, slots=True)`` makes what ``dataclass(frozen=True, slots=True)``
makes, for less at start-up: the same class, instance by instance."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from metric_reader._core import record, record_field, record_replace


def _both(body: Any) -> tuple[Any, Any]:
    """The class written by ``body`` made twice: by dataclass, then by record."""
    return (
        dataclass(frozen=True, slots=True)(body()),
        record(frozen=True, slots=True)(body()),
    )


def _point() -> type:
    class Point:
        """A point."""

        x: int
        y: float = 1.5
        tags: tuple[str, ...] = field(default_factory=tuple)
        note: str = field(default="", compare=False, repr=False)
        kind: ClassVar[str] = "point"

        def norm(self) -> float:
            return abs(self.x) + abs(self.y)

    return Point


def _checked() -> type:
    class Checked:
        low: int
        seen: list[int] = field(default_factory=list, init=False, compare=False)
        derived: int = field(default=0, init=False)

        def __post_init__(self) -> None:
            self.seen.append(self.low)
            object.__setattr__(self, "derived", self.low * 2)

    return Checked


# pickled by name, so defined at the top
@dataclass(frozen=True, slots=True)
class PickledD:
    a: int
    b: tuple[int, ...] = ()


@record(frozen=True, slots=True)
class PickledR:
    a: int
    b: tuple[int, ...] = ()


@record(frozen=True, slots=True)
class Unasked:
    """No test asks for its dataclass fields but one."""

    a: int
    b: list[int] = record_field(default_factory=list, compare=False)


def test_instances_behave_as_the_dataclass_ones() -> None:
    made = [cls(3, tags=("a",), note="n") for cls in _both(_point)]
    d, r = made
    assert repr(r) == repr(d).replace(type(d).__qualname__, type(r).__qualname__)
    assert r == type(r)(3, 1.5, ("a",), "other note")  # ``note`` is not compared
    assert r != type(r)(4, tags=("a",)) and r != d
    assert hash(r) == hash(d)
    assert (r.x, r.y, r.tags, r.note, r.kind, r.norm()) == (3, 1.5, ("a",), "n", "point", 4.5)
    assert type(r)(1).tags == () and type(r).__match_args__ == type(d).__match_args__
    assert str(inspect.signature(type(r).__init__)) == str(inspect.signature(type(d).__init__))
    assert type(r).__slots__ == type(d).__slots__ and not hasattr(r, "__dict__")
    for instance in made:
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
            instance.x = 4
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'y'"):
            del instance.y
    with pytest.raises(TypeError):
        type(r)()
    with pytest.raises(TypeError):
        type(r)(1, 2, (), "", "too many")


def test_the_standard_functions_take_it_as_a_dataclass() -> None:
    d, r = (cls(3, tags=("a",)) for cls in _both(_point))
    assert dataclasses.is_dataclass(r)
    assert [(f.name, f.default, f.compare, f.repr, f.init) for f in dataclasses.fields(r)] == [
        (f.name, f.default, f.compare, f.repr, f.init) for f in dataclasses.fields(d)
    ]
    assert dataclasses.asdict(r) == dataclasses.asdict(d)
    moved = dataclasses.replace(r, y=2.0)
    assert (type(moved), moved.x, moved.y, moved.tags) == (type(r), 3, 2.0, ("a",))


def test_post_init_and_fields_out_of_init() -> None:
    d, r = (cls(5) for cls in _both(_checked))
    assert (r.seen, r.derived) == (d.seen, d.derived) == ([5], 10)
    assert r == type(r)(5) and hash(r) == hash(d)


def test_pickled_and_copied() -> None:
    r = PickledR(1, (2,))
    assert pickle.loads(pickle.dumps(r)) == r
    assert copy.copy(r) == r and copy.deepcopy(r) == r
    assert pickle.loads(pickle.dumps(PickledD(1, (2,)))) == PickledD(1, (2,))


def test_refuses_what_dataclass_refuses() -> None:
    class Mutable:
        items: list[int] = []  # noqa: RUF012

    class Order:
        a: int = 1
        b: int

    class Settable:
        a: int

        def __setattr__(self, name: str, value: object) -> None:
            pass

    for body, error in ((Mutable, ValueError), (Order, TypeError), (Settable, TypeError)):
        with pytest.raises(error):
            dataclass(frozen=True, slots=True)(body)
        with pytest.raises(error):
            record(frozen=True, slots=True)(body)


def test_a_mutable_record_behaves_as_the_mutable_dataclass() -> None:
    def body() -> type:
        class Machine:
            state: str
            count: int = 0
            seen: list[int] = field(default_factory=list)

        return Machine

    d_cls, r_cls = dataclass(slots=True)(body()), record(slots=True)(body())
    d, r = d_cls("idle"), r_cls("idle")
    r.count += 2
    d.count += 2
    r.seen.append(1)
    d.seen.append(1)
    assert (r.state, r.count, r.seen) == ("idle", 2, [1]) and r == r_cls("idle", 2, [1])
    assert repr(r) == repr(d).replace(d_cls.__qualname__, r_cls.__qualname__)
    assert r_cls.__hash__ is None and d_cls.__hash__ is None
    assert r_cls("idle").seen is not r_cls("idle").seen
    assert str(inspect.signature(r_cls.__init__)) == str(inspect.signature(d_cls.__init__))
    assert dataclasses.replace(r, state="busy") == r_cls("busy", 2, [1])
    with pytest.raises(AttributeError):
        r.other = 1  # type: ignore[attr-defined]


def _optioned(field_of: Any) -> Any:
    """A class whose fields are written with ``field_of``: ``dataclasses.field`` or
    ``record_field``, each option of theirs used once."""

    def body() -> type:
        class Optioned:
            key: str
            tags: list[str] = field_of(default_factory=list, metadata={"unit": "tag"})
            weight: float = field_of(default=1.0, hash=False)
            note: str = field_of(default="", repr=False, compare=False)
            seen: int = field_of(default=0, init=False)

        return Optioned

    return body


def _real_fields(cls: Any) -> list[tuple[Any, ...]]:
    said = ("name", "type", "default", "default_factory", "init", "repr", "hash", "compare")
    return [
        (*(getattr(f, name) for name in said), dict(f.metadata), f.kw_only, f._field_type)
        for f in dataclasses.fields(cls)
    ]


def test_record_field_gives_the_options_of_field() -> None:
    d_cls = dataclass(frozen=True, slots=True)(_optioned(field)())
    r_cls = record(frozen=True, slots=True)(_optioned(record_field)())
    d, r = d_cls("k", ["a"], 2.0, "n"), r_cls("k", ["a"], 2.0, "n")
    assert repr(r) == repr(d).replace(d_cls.__qualname__, r_cls.__qualname__)
    assert r == r_cls("k", ["a"], 2.0, "other") and r != r_cls("k", ["a"], 3.0)
    assert r_cls("k").tags == [] and r_cls("k").tags is not r_cls("k").tags
    assert r.seen == 0 and r_cls.__match_args__ == d_cls.__match_args__
    assert str(inspect.signature(r_cls.__init__)) == str(inspect.signature(d_cls.__init__))
    d_hashable, r_hashable = d_cls("k", (), 2.0), r_cls("k", (), 2.0)  # type: ignore[arg-type]
    assert hash(r_hashable) == hash(d_hashable)  # ``weight`` is not hashed
    assert _real_fields(r_cls) == _real_fields(d_cls)
    assert dataclasses.asdict(r) == dataclasses.asdict(d)
    for replace in (dataclasses.replace, record_replace):
        assert replace(r, weight=3.0) == r_cls("k", ["a"], 3.0)
        with pytest.raises(ValueError, match="init=False"):
            replace(r, seen=1)
    assert record_replace(d, key="j") == d_cls("j", ["a"], 2.0)  # a dataclass too


def test_the_dataclass_fields_are_made_when_first_asked_for() -> None:
    r = Unasked(1, [2])
    assert not isinstance(Unasked.__dict__["__dataclass_fields__"], dict)
    assert pickle.loads(pickle.dumps(r)) == r and copy.deepcopy(r) == r
    assert record_replace(r, a=3) == Unasked(3) and repr(r) == "Unasked(a=1, b=[2])"
    assert r == Unasked(1) and hash(r) == hash((1,)) and Unasked.__match_args__ == ("a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.a = 2  # type: ignore[misc]
    assert not isinstance(Unasked.__dict__["__dataclass_fields__"], dict)  # none needed them
    assert dataclasses.is_dataclass(r) and dataclasses.is_dataclass(Unasked)
    made = Unasked.__dict__["__dataclass_fields__"]
    assert isinstance(made, dict) and r.__dataclass_fields__ is made  # made once, kept
    assert dataclasses.fields(r)[1] is made["b"] and made["b"].default_factory is list
    assert dataclasses.asdict(r) == {"a": 1, "b": [2]}

    class Derived(Unasked):
        __slots__ = ()

    assert dataclasses.fields(Derived(1)) == dataclasses.fields(r)


def test_record_field_refuses_what_field_refuses() -> None:
    with pytest.raises(ValueError, match="both default and default_factory"):
        record_field(default=1, default_factory=list)

    def mutable(field_of: Any) -> type:
        class Mutable:
            items: list[int] = field_of(default=[])

        return Mutable

    def unannotated(field_of: Any) -> type:
        class Unannotated:
            a: int
            b = field_of(default=1)

        return Unannotated

    for body, error in ((mutable, ValueError), (unannotated, TypeError)):
        with pytest.raises(error):
            dataclass(frozen=True, slots=True)(body(field))
        with pytest.raises(error):
            record(frozen=True, slots=True)(body(record_field))


def test_records_of_one_compared_field_or_none_compare_and_hash() -> None:
    def one() -> type:
        class One:
            a: int
            note: str = field(default="", compare=False)

        return One

    def empty() -> type:
        class Empty:
            pass

        return Empty

    for body, args in ((one, (1, "n")), (empty, ())):
        d_cls, r_cls = _both(body)
        assert r_cls(*args) == r_cls(*args) and hash(r_cls(*args)) == hash(d_cls(*args))
