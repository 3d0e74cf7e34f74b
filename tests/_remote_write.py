"""Prometheus remote-write requests (protocol 1.0: a snappy-compressed protobuf
``WriteRequest``), written by hand: the throwaway Prometheus of rule unit tests is given
series with staleness markers this way, since no text format can carry one.

The protobuf holds only what a ``WriteRequest`` of samples needs (labels, double values,
int64 millisecond timestamps). The snappy block is made of literals only: valid snappy
that any decoder reads, uncompressed (the requests go to a loopback port).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

__all__ = ["STALE_NAN_BITS", "snappy_block", "write_request"]

STALE_NAN_BITS = 0x7FF0000000000002
"""Prometheus' staleness marker: a NaN of its own (``value.StaleNaN``)."""

_LITERAL_MAX = 65536
"""Bytes per literal, as Go's snappy encoder writes them."""

Point = tuple[int, float | int]
"""A timestamp in milliseconds and a value: a float, or an int that is the float's bits."""


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        if not number:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2) of ``tag``."""
    return bytes([tag << 3 | 2]) + _varint(len(payload)) + payload


def _sample(at_ms: int, value: float | int) -> bytes:
    bits = value if isinstance(value, int) else struct.unpack("<Q", struct.pack("<d", value))[0]
    # value: field 1, wire type 1 (64 bits); timestamp: field 2, a varint (two's complement).
    return b"\x09" + struct.pack("<Q", bits) + b"\x10" + _varint(at_ms & 0xFFFFFFFFFFFFFFFF)


def write_request(series: Sequence[tuple[Mapping[str, str], Sequence[Point]]]) -> bytes:
    """A ``WriteRequest`` of ``series``: each its labels (``__name__`` included) and its
    points, in time order; a value given as an int is the float's bits (``STALE_NAN_BITS``)."""
    out = bytearray()
    for labels, points in series:
        body = bytearray()
        for name, text in sorted(labels.items()):
            body += _field(1, _field(1, name.encode()) + _field(2, text.encode()))
        for at_ms, value in points:
            body += _field(2, _sample(at_ms, value))
        out += _field(1, bytes(body))
    return bytes(out)


def snappy_block(data: bytes) -> bytes:
    """``data`` in snappy's block format, as literals."""
    out = bytearray(_varint(len(data)))
    for start in range(0, len(data), _LITERAL_MAX):
        chunk = data[start : start + _LITERAL_MAX]
        length = len(chunk) - 1
        if length < 60:
            out.append(length << 2)
        elif length < 0x100:
            out += bytes([60 << 2, length])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", length)
        out += chunk
    return bytes(out)
