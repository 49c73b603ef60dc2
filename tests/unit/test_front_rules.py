"""The front's decisions: which worker a request line names, and where a connection goes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interactive_gym.server.cluster.front import choose_worker, route_key

WS = b"GET /socket.io/?EIO=4&transport=websocket&ig_route=w1 HTTP/1.1\r\nHost: x\r\n\r\n"

ROUTES: list[tuple[bytes, str | None]] = [
    (WS, "w1"),
    (b"GET /socket.io/?ig_route=w0 HTTP/1.1\r\n", "w0"),
    (b"GET /?ig_route=w999 HTTP/1.1\r\n", "w999"),
    (b"GET /?ig_route=w1000 HTTP/1.1\r\n", None),  # four digits: not a worker name
    (b"GET /?ig_route=w HTTP/1.1\r\n", None),
    (b"GET /?ig_route=x1 HTTP/1.1\r\n", None),
    (b"GET /?ig_route=W1 HTTP/1.1\r\n", None),
    (b"GET /?ig_route= HTTP/1.1\r\n", None),
    (b"GET /?ig_route HTTP/1.1\r\n", None),
    (b"GET /?ig_route=w1%0A HTTP/1.1\r\n", None),  # a trailing newline must not pass the name check
    (b"GET /?ig_route=%771 HTTP/1.1\r\n", "w1"),  # percent-encoding
    (b"GET /?ig_route=%77%31 HTTP/1.1\r\n", "w1"),
    (b"GET /?ig%5Froute=w2 HTTP/1.1\r\n", "w2"),  # an encoded name
    (b"GET /?ig_route=w%ZZ HTTP/1.1\r\n", None),  # broken escape
    (b"GET /?ig_route=w1&ig_route=w2 HTTP/1.1\r\n", "w1"),  # repeated: the first
    (b"GET /?ig_route=bad&ig_route=w2 HTTP/1.1\r\n", None),  # the first decides, even when invalid
    (b"GET /?a=1&ig_route=w3&b=2 HTTP/1.1\r\n", "w3"),
    (b"GET /?xig_route=w3 HTTP/1.1\r\n", None),
    (b"GET /?ig_routex=w3 HTTP/1.1\r\n", None),
    (b"GET /?a=ig_route=w3 HTTP/1.1\r\n", None),
    (b"GET /path/ig_route=w3 HTTP/1.1\r\n", None),  # in the path, not the query
    (b"GET /?x=1#ig_route=w3 HTTP/1.1\r\n", None),  # in a fragment
    (b"GET /?ig_route=w3#frag HTTP/1.1\r\n", "w3"),
    (b"GET http://host:8000/socket.io/?ig_route=w4 HTTP/1.1\r\n", "w4"),  # absolute form
    (b"POST /?ig_route=w5 HTTP/1.1\r\n", "w5"),  # any method
    (b"GET /?ig_route=w6 HTTP/1.0\r\n", "w6"),
    (b"GET /?ig_route=w1 HTTP/1.1", None),  # no line end yet: partial
    (b"GET /?ig_route=w1", None),
    (b"GET /?ig_route=w1 HTTP/1.1\n", None),  # bare LF: not an HTTP/1.1 request line
    (b"GET  /?ig_route=w1 HTTP/1.1\r\n", None),  # two spaces
    (b"GET /?ig_route=w1\r\n", None),  # HTTP/0.9 style
    (b"GET /?ig_route=w1 FTP/1.1\r\n", None),
    (b"G3T /?ig_route=w1 HTTP/1.1\r\n", None),
    (b"\r\nGET /?ig_route=w1 HTTP/1.1\r\n", None),  # empty first line
    (b"", None),
    (b"\r\n", None),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", None),  # a TLS ClientHello
    (b"\xff\xfe\xfd ig_route=w1 \xff\r\n", None),
    (b"GET /?ig_route=w1 HTTP/1.1\r\n" + b"\xff" * 100, "w1"),  # garbage after the line is not read
    (b"GET /?ig_route=\xc3\xa91 HTTP/1.1\r\n", None),
    (b"GET /?ig_route=w\xd9\xa1 HTTP/1.1\r\n", None),  # Arabic-Indic digit one is not [0-9]
    (b"GET /?ig_route=w%D9%A1 HTTP/1.1\r\n", None),
    (b"GET /?ig_route=w+1 HTTP/1.1\r\n", None),  # plus is a space
    (b"GET /?&&ig_route=w7&& HTTP/1.1\r\n", "w7"),
    (b"GET /?ig_route=w8=9 HTTP/1.1\r\n", None),
    (b"GET ?ig_route=w9 HTTP/1.1\r\n", "w9"),
]


@pytest.mark.parametrize(("head", "expected"), ROUTES)
def test_route_key(head: bytes, expected: str | None) -> None:
    assert route_key(head) == expected


@given(st.binary(max_size=300))
def test_route_key_never_raises(head: bytes) -> None:
    assert route_key(head) is None or route_key(head) in {f"w{i}" for i in range(1000)}


@given(st.text(alphabet="GET /?&=%_igroutew0123456789 HTTP/.\r\n", max_size=80))
def test_route_key_near_misses_never_raise(text: str) -> None:
    result = route_key(text.encode())
    assert result is None or (result[0] == "w" and result[1:].isdigit() and result.isascii())


CHOICES: list[tuple[str | None, list[str], int, str | None]] = [
    ("w1", ["w0", "w1"], 0, "w1"),
    ("w1", ["w0", "w1"], 7, "w1"),  # a named live worker ignores the turn
    ("w0", ["w0", "w1"], 1, "w0"),
    (None, ["w0", "w1"], 0, "w0"),
    (None, ["w0", "w1"], 1, "w1"),
    (None, ["w0", "w1"], 2, "w0"),
    (None, ["w0", "w1", "w2"], 5, "w2"),
    ("w1", ["w0"], 0, "w0"),  # named but down
    ("w1", ["w0", "w2"], 1, "w2"),
    ("w9", ["w0", "w1"], 3, "w1"),  # unknown
    (None, [], 0, None),
    ("w0", [], 4, None),
    (None, ["w3"], 10**9, "w3"),
]


@pytest.mark.parametrize(("route", "alive", "turn", "expected"), CHOICES)
def test_choose_worker(route: str | None, alive: list[str], turn: int, expected: str | None) -> None:
    assert choose_worker(route, alive, turn) == expected


def test_round_robin_covers_every_live_worker_evenly() -> None:
    alive = ["w0", "w1", "w2"]
    picks = [choose_worker(None, alive, turn) for turn in range(9)]
    assert picks == alive * 3
