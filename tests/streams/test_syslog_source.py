"""Syslog over UDP and TCP: framing, oversize, broken frames, many senders, a full queue."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sources import RawRecord, SyslogTcpSource, SyslogUdpSource
from streams.sources.syslog import _Framer

DEADLINE = 5.0


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the deadline")
        time.sleep(0.005)


def collect(source: SyslogUdpSource | SyslogTcpSource, count: int) -> list[RawRecord]:
    """Exactly ``count`` records, polling ``read()`` as the daemon does (bounded wait)."""
    records: list[RawRecord] = []
    deadline = time.monotonic() + DEADLINE
    while len(records) < count and time.monotonic() < deadline:
        records += source.read()
        time.sleep(0.005)
    assert len(records) == count, [r.text for r in records]
    return records


@pytest.fixture
def udp() -> Iterator[SyslogUdpSource]:
    source = SyslogUdpSource("127.0.0.1", 0)
    yield source
    source.close()


@pytest.fixture
def tcp() -> Iterator[SyslogTcpSource]:
    source = SyslogTcpSource("127.0.0.1", 0, max_message=32)
    yield source
    source.close()


def connect(source: SyslogTcpSource) -> socket.socket:
    sock = socket.create_connection(source.address, timeout=DEADLINE)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def assert_closed_by_peer(sock: socket.socket) -> None:
    """The server closed this connection (recv is bounded by the socket's timeout)."""
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(16) == b""


def send_in_parts(sock: socket.socket, *parts: bytes) -> None:
    for part in parts:
        sock.sendall(part)
        time.sleep(0.02)  # separate segments, so the server sees the frame in pieces


# --- UDP ---------------------------------------------------------------------------------


def test_udp_one_message_per_datagram_and_per_line(udp: SyslogUdpSource) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"<13>Oct 11 22:14:15 web1 sshd[1]: one\n", udp.address)
        sender.sendto(b"<14>two-a\r\n<14>two-b\n", udp.address)
        sender.sendto("<15>three caf\u00e9 \xff".encode() + b"\xfe", udp.address)
        records = collect(udp, 4)
    assert [r.text for r in records] == [
        "<13>Oct 11 22:14:15 web1 sshd[1]: one",
        "<14>two-a",
        "<14>two-b",
        "<15>three caf\u00e9 \u00ff\ufffd",
    ]
    assert [r.line for r in records] == [1, 2, 3, 4]
    assert {r.origin for r in records} == {f"syslog-udp://127.0.0.1:{udp.address[1]}"}
    assert {r.offset for r in records} == {0}
    assert (udp.received, udp.dropped, udp.snapshot(), udp.lag_bytes) == (4, 0, 4, 0)


def test_udp_full_queue_drops_new_messages_and_counts_them() -> None:
    source = SyslogUdpSource("127.0.0.1", 0, max_queue=2)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for n in range(5):
                sender.sendto(f"<13>m{n}".encode(), source.address)
            wait_until(lambda: source.received == 5)
        assert (source.dropped, source.queued, source.lag_bytes) == (3, 2, 12)
        assert [r.text for r in source.read()] == ["<13>m0", "<13>m1"]
        assert source.lag_bytes == 0
    finally:
        source.close()


def test_udp_close_is_idempotent_and_frees_the_port() -> None:
    source = SyslogUdpSource("127.0.0.1", 0)
    address = source.address
    source.close()
    source.close()
    assert not source._thread.is_alive()
    SyslogUdpSource(*address).close()  # the port can be bound again


# --- TCP framing, through real sockets ---------------------------------------------------


def test_tcp_octet_counted_frames_split_across_sends(tcp: SyslogTcpSource) -> None:
    with connect(tcp) as sock:
        # A count split from its message, a message split in two, then two frames at once.
        send_in_parts(sock, b"1", b"0 <13>he", b"llo!", b"6 <14>ab5 <15>c")
        records = collect(tcp, 3)
        port = sock.getsockname()[1]
    assert [r.text for r in records] == ["<13>hello!", "<14>ab", "<15>c"]
    assert {r.origin for r in records} == {f"syslog-tcp://127.0.0.1:{port}"}
    assert (tcp.framing_errors, tcp.oversize) == (0, 0)


def test_tcp_lf_and_nul_framing_mixed_with_octet_counting(tcp: SyslogTcpSource) -> None:
    with connect(tcp) as sock:
        send_in_parts(
            sock,
            b"<13>lf-one\r\n<13>lf-",
            b"two\n\n",  # an empty frame between messages is skipped
            b"<13>nul\x002024-01-01 digits first\n",
            b"4 <1>",
            b"\n",
        )
        records = collect(tcp, 5)
    assert [r.text for r in records] == [
        "<13>lf-one",
        "<13>lf-two",
        "<13>nul",
        "2024-01-01 digits first",
        "<1>",
    ]


def test_tcp_two_concurrent_connections_keep_their_own_frames(tcp: SyslogTcpSource) -> None:
    with connect(tcp) as first, connect(tcp) as second:
        send_in_parts(first, b"<13>first-a\n<13>fir")
        send_in_parts(second, b"12 <13>second-a<13>second-b\n")
        send_in_parts(first, b"st-b\n")
        records = collect(tcp, 4)
        first_port, second_port = first.getsockname()[1], second.getsockname()[1]
    by_origin: dict[str, list[str]] = {}
    for record in records:
        by_origin.setdefault(record.origin, []).append(record.text)
    assert by_origin == {
        f"syslog-tcp://127.0.0.1:{first_port}": ["<13>first-a", "<13>first-b"],
        f"syslog-tcp://127.0.0.1:{second_port}": ["<13>second-a", "<13>second-b"],
    }
    assert tcp.connections == 2
    assert [r.line for r in records] == [1, 2, 3, 4]


def test_tcp_oversize_messages_are_cut_and_framing_continues(tcp: SyslogTcpSource) -> None:
    long_text = b"<13>" + b"x" * 40  # 44 bytes, max_message is 32
    with connect(tcp) as sock:
        send_in_parts(sock, b"44 " + long_text[:20], long_text[20:] + b"6 <13>ok")
        send_in_parts(sock, long_text + b"\n<13>after\n")
        records = collect(tcp, 4)
    cut = "<13>" + "x" * 28
    assert [r.text for r in records] == [cut, "<13>ok", cut, "<13>after"]
    assert tcp.oversize == 2


def test_tcp_bad_octet_count_closes_only_that_connection(tcp: SyslogTcpSource) -> None:
    with connect(tcp) as bad, connect(tcp) as good:
        send_in_parts(bad, b"<13>before\n012 <13>leading zero\n")
        assert_closed_by_peer(bad)
        wait_until(lambda: tcp.framing_errors == 1)
        send_in_parts(good, b"<13>still served\n")
        records = collect(tcp, 2)
    assert [r.text for r in records] == ["<13>before", "<13>still served"]
    wait_until(lambda: tcp.open_connections == 0)


def test_tcp_end_of_stream_hands_on_a_last_line_but_not_a_cut_frame(
    tcp: SyslogTcpSource,
) -> None:
    with connect(tcp) as sock:
        sock.sendall(b"<13>no newline at the end")
    with connect(tcp) as sock:
        sock.sendall(b"20 <13>only ten")
    records = collect(tcp, 1)
    wait_until(lambda: tcp.framing_errors == 1)
    assert [r.text for r in records] == ["<13>no newline at the end"]
    time.sleep(0.05)
    assert list(tcp.read()) == []


def test_tcp_full_queue_pushes_back_instead_of_dropping() -> None:
    source = SyslogTcpSource("127.0.0.1", 0, max_queue=2)
    try:
        with connect(source) as sock:
            sock.sendall(b"".join(b"<13>m%d\n" % n for n in range(5)))
            wait_until(lambda: source.queued == 2)
            time.sleep(0.05)  # the thread must now hold the rest back, not drop it
            assert (source.received, source.dropped, source.queued) == (2, 0, 2)
            records = [r.text for r in source.read()]
            wait_until(lambda: source.received == 4)
            records += [r.text for r in source.read()]
            records += [r.text for r in collect(source, 1)]
        assert records == [f"<13>m{n}" for n in range(5)]
        assert source.dropped == 0
    finally:
        source.close()


def test_tcp_close_stops_the_thread_and_the_listener() -> None:
    source = SyslogTcpSource("127.0.0.1", 0)
    client = connect(source)
    wait_until(lambda: source.open_connections == 1)
    source.close()
    source.close()
    assert not source._thread.is_alive()
    assert_closed_by_peer(client)
    client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(source.address, timeout=DEADLINE).close()


# --- TCP framing, unit level -------------------------------------------------------------


def frames(framer: _Framer, limit: int = 1_000_000) -> list[str]:
    items = framer.take(limit)
    assert {origin for _, origin, _ in items} <= {"o"}
    return [text for text, _, _ in items]


def test_framer_byte_by_byte_gives_the_same_messages() -> None:
    stream = b"5 <1>ab<2>cd\r\n10 <3>ef\n\x00ghi<4>\x00"
    framer = _Framer("o", max_message=100)
    found: list[str] = []
    for byte in stream:
        framer.buffer.append(byte)
        found += frames(framer)
    assert found == ["<1>ab", "<2>cd", "<3>ef\n\x00ghi", "<4>"]
    assert (framer.cut, framer.error, len(framer.buffer)) == (0, None, 0)


def test_framer_counts_sizes_in_bytes_and_cuts() -> None:
    framer = _Framer("o", max_message=8)
    framer.buffer += "<1>caf\u00e9\n12 <2>abcdefghi<3>0123456789\n".encode()
    assert framer.take(10) == [
        ("<1>caf\u00e9", "o", 8),
        ("<2>abcde", "o", 8),
        ("<3>01234", "o", 8),
    ]
    # The over-long LF-framed message is dropped up to its LF: nothing left over.
    assert (framer.cut, framer.skip, framer.discarding, len(framer.buffer)) == (2, 0, False, 0)


@pytest.mark.parametrize(
    "stream",
    [b"0 x", b"01 x", b"1234567890 x", b"<1>ok\n00 x"],
    ids=["zero", "leading-zero", "ten-digits", "after-a-good-frame"],
)
def test_framer_rejects_bad_octet_counts(stream: bytes) -> None:
    framer = _Framer("o", max_message=100)
    framer.buffer += stream
    assert frames(framer) == (["<1>ok"] if stream.startswith(b"<1>") else [])
    assert framer.error is not None and framer.error.startswith("bad octet count")


def test_framer_take_stops_at_the_limit_and_resumes() -> None:
    framer = _Framer("o", max_message=100)
    framer.buffer += b"<1>a\n3 <2><3>c\n<4>"
    assert frames(framer, 2) == ["<1>a", "<2>"]
    assert frames(framer, 2) == ["<3>c"]
    assert (frames(framer, 2), framer.finish(), framer.error) == ([], ("<4>", "o", 3), None)


def test_framer_end_of_stream_inside_a_counted_frame_is_an_error() -> None:
    framer = _Framer("o", max_message=100)
    framer.buffer += b"20 <1>short"
    assert (frames(framer), framer.finish()) == ([], None)
    assert framer.error == "connection closed inside a b'20'-octet frame"


def test_framer_digits_then_not_a_space_are_a_line() -> None:
    framer = _Framer("o", max_message=100)
    framer.buffer += b"20240101T000000Z sshd: x\n123\n"
    assert frames(framer) == ["20240101T000000Z sshd: x", "123"]


message_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30).filter(
    lambda text: not text.endswith(("\n", "\r"))
)


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(message_text, min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=6),
)
def test_framer_octet_counting_is_independent_of_segmentation(
    messages: list[str], cuts: list[int]
) -> None:
    stream = b"".join(b"%d %s" % (len(m.encode()), m.encode()) for m in messages)
    framer = _Framer("o", max_message=1000)
    found: list[str] = []
    start = 0
    for cut in [*sorted(c for c in cuts if c < len(stream)), len(stream)]:
        framer.buffer += stream[start:cut]
        found += frames(framer)
        start = max(start, cut)
    assert found == messages
