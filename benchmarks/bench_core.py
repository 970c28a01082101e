#!/usr/bin/env python
"""Core throughput of sansio_smtp, as ratios against C-speed floors measured in the same run.

    python benchmarks/bench_core.py            # full sizes (about a minute)
    python benchmarks/bench_core.py --quick    # smoke run, a few seconds
    python benchmarks/bench_core.py --only a,c --repeats 9
    python benchmarks/bench_core.py --profile b   # cProfile one run of a scenario

Scenarios (see benchmarks/README.md for what each ratio means):

(a) server DATA: a 10 MB message (~80-octet lines, some starting with ".", dot-stuffed,
    ending in CRLF.CRLF) fed in 64 KiB chunks to a server already in the DATA state,
    draining next_event() after each chunk. Floor: wire.find(CRLF.CRLF) +
    wire.replace(b"\\r\\n..", b"\\r\\n.") over the same bytes.
(b) server commands: 100k MAIL/RCPT/RSET lines (a legal sequence) fed in 64 KiB chunks,
    each answered with server.default_reply(). Floor: blob.split(b"\\r\\n").
(c) drip: 16, 32 and 64 KiB of DATA content fed one byte at a time; the time ratios
    t32/t16 and t64/t32 should be ~2 (linear), not ~4 (quadratic).
(d) client DATA writer: 10 MB through client.send_with_data_passthrough(MessageData(...))
    in 64 KiB chunks. Floor: chunk.replace(b"\\r\\n.", b"\\r\\n..") per chunk.
(e) pipelined session, both roles: 100 transactions of MAIL + 100 RCPT + DATA sent by a
    client core as one PIPELINING group each, read and answered by a server core, and the
    replies read back by the client. Floor: blob.split(b"\\r\\n") over the same commands.
(f) BDAT: a 10 MB binary body (every octet value, bare CR/LF, no line structure) sent by a
    client core as BDAT 1 MiB chunks and read by a server core in 64 KiB reads. Floor:
    b"".join() of the same 64 KiB pieces (one copy, what any receiver must do).
(g) messages, both roles: 2,000 transactions of one 1 KiB message each, as a PIPELINING
    client sends them (MAIL + RCPT + DATA in one write, the content and its end, RSET-free),
    every command and the content read and answered by a server core and every reply
    read back by the client core. Floor: split(CRLF) of the command lines plus
    find(CRLF.CRLF) over the content, per message. Printed: microseconds per message.

The machine may be shared and noisy, so every measurement is repeated, ours and the floor
alternating (and alternating which goes first), and the best (minimum) time of each is kept.
Setup (building a connection in the right state, slicing chunks) is never timed; gc is
disabled while timing, as timeit does. Every scenario checks its output once, untimed.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import itertools
import math
import pstats
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Benchmark this checkout, not some installed copy.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import sansio_smtp  # noqa: E402
from sansio_smtp import (  # noqa: E402
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Config,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Greeting,
    InvalidCommand,
    MailFrom,
    MessageData,
    RcptTo,
    Reply,
    Rset,
    State,
)

SEED = 5321
KiB = 1024
MB = 1_000_000  # rates are in 10**6 octets per second
CHUNK = 64 * KiB

#: What the benchmark server advertises: enough for the MAIL parameters scenario (b) sends.
SERVER_CONFIG = Config(
    hostname="mx.example.org",
    extensions={"PIPELINING": (), "SIZE": "52428800", "8BITMIME": ()},
    # (b) parses thousands of commands in one session: the session limits that stop a
    # client wasting a server's time are not what it measures.
    max_junk_commands=None,
    max_invalid_commands=None,
)
CLIENT_CONFIG = Config(hostname="client.example.org")

Timed = Callable[[], object]
#: Untimed setup that returns the callable to time.
Maker = Callable[[], Timed]


@dataclass(frozen=True)
class Sizes:
    data_bytes: int = 10 * MB
    commands: int = 100_000
    drip_kib: tuple[int, ...] = (16, 32, 64)
    writer_bytes: int = 10 * MB
    pipelined: tuple[int, int] = (100, 100)  # transactions, RCPTs per transaction
    messages: int = 2_000  # (g) transactions of one 1 KiB message
    bdat_bytes: int = 10 * MB
    chunk: int = CHUNK
    repeats: int = 5
    min_time: float = 0.05  # a floor measurement loops until it lasts this long

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            data_bytes=1 * MB,
            commands=5_000,
            drip_kib=(2, 4, 8),
            writer_bytes=1 * MB,
            pipelined=(10, 100),
            messages=200,
            bdat_bytes=1 * MB,
            repeats=3,
            min_time=0.01,
        )


# ------------------------------------------------------------------------------ inputs

# Printable octets, never CR, LF or ".": the text of the generated lines.
_ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;'"
_TO_TEXT = bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256))


@dataclass(frozen=True)
class Message:
    content: bytes  # what the server must deliver: CRLF lines, un-stuffed
    wire: bytes  # what the client sends: dot-stuffed, then ".\r\n"
    lines: int
    dot_lines: int  # lines that start with "." (stuffed on the wire)


def make_message(size: int, seed: int = SEED) -> Message:
    """Exactly ``size`` octets of content in CRLF lines of 72-80 octets (a few empty ones
    as paragraph breaks), ~2% of them starting with "." and a few that are just "." (which
    would end the message if the stuffing were lost). The wire form is built line by line,
    independently of the library's and the floor's replace() tricks."""
    rng = random.Random(seed)
    pool = rng.randbytes(64 * KiB).translate(_TO_TEXT)
    header = [
        b"From: Sender <sender@example.org>",
        b"To: Recipient <rcpt@example.net>",
        b"Subject: benchmark message",
        b"Message-ID: <bench.5321@example.org>",
        b"",
    ]
    lines: list[bytes] = []
    total = 0
    for line in header:
        if total + len(line) + 2 > size - 84:
            break
        lines.append(line)
        total += len(line) + 2
    while size - total > 160:
        roll = rng.random()
        if roll < 0.001:
            line = b"."
        elif roll < 0.02:
            start = rng.randrange(len(pool) - 80)
            line = b"." + pool[start : start + rng.randint(69, 77)]
        elif roll < 0.05:
            line = b""
        else:
            start = rng.randrange(len(pool) - 80)
            line = pool[start : start + rng.randint(70, 78)]
        lines.append(line)
        total += len(line) + 2
    # One or two last lines (each at most 80 octets) make the size exact.
    rest = size - total
    if rest < 2:
        raise ValueError(f"cannot make {size} octets of CRLF lines")
    for part in (rest // 2, rest - rest // 2) if rest >= 84 else (rest,):
        start = rng.randrange(len(pool) - 80)
        lines.append(pool[start : start + part - 2])
    content = b"".join(line + b"\r\n" for line in lines)
    assert len(content) == size, (len(content), size)
    wire = b"".join((b"." if line[:1] == b"." else b"") + line + b"\r\n" for line in lines)
    return Message(
        content=content,
        wire=wire + b".\r\n",
        lines=len(lines),
        dot_lines=sum(1 for line in lines if line[:1] == b"."),
    )


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@dataclass(frozen=True)
class CommandStream:
    blob: bytes  # the lines, CRLF-terminated, as the client pipelines them
    lines: int
    counts: dict[type, int] = field(default_factory=dict)


def make_commands(count: int, seed: int = SEED) -> CommandStream:
    """``count`` command lines that are legal in sequence for a server in the READY state:
    transactions of one MAIL (some with SIZE= and BODY=8BITMIME) and 1-15 RCPTs, each
    ended by RSET. Cut after ``count`` lines, wherever that falls."""
    rng = random.Random(seed)
    domains = ["example.org", "example.net", "mail.example.com", "lists.example.edu"]
    lines: list[bytes] = []
    counts = {MailFrom: 0, RcptTo: 0, Rset: 0}

    def user() -> str:
        return (
            f"{rng.choice(['alice', 'bob', 'carol.smith', 'd-e.f', 'x_y'])}{rng.randrange(10**5)}"
        )

    while len(lines) < count:
        params = ""
        if rng.random() < 0.5:
            params += f" SIZE={rng.randrange(1000, 10**7)}"
        if rng.random() < 0.2:
            params += " BODY=8BITMIME"
        lines.append(f"MAIL FROM:<{user()}@{rng.choice(domains)}>{params}".encode())
        counts[MailFrom] += 1
        for _ in range(rng.randint(1, 15)):
            if len(lines) >= count:
                break
            lines.append(f"RCPT TO:<{user()}@{rng.choice(domains)}>".encode())
            counts[RcptTo] += 1
        if len(lines) < count:
            lines.append(b"RSET")
            counts[Rset] += 1
    return CommandStream(b"".join(line + b"\r\n" for line in lines), len(lines), counts)


# ------------------------------------------------------------------- connection setup


def server_ready() -> Connection:
    """A server that sent its greeting and accepted EHLO."""
    server = Connection(SERVER, SERVER_CONFIG)
    server.send(Greeting(lines="mx.example.org ESMTP"))
    server.receive_data(b"EHLO client.example.org\r\n")
    event = server.next_event()
    assert isinstance(event, Ehlo), event
    server.send(server.default_reply(event))
    return server


def server_in_data_state() -> Connection:
    """A server that answered EHLO, MAIL, RCPT and DATA (354) with its default replies."""
    server = server_ready()
    for line in (b"MAIL FROM:<sender@example.org>\r\n", b"RCPT TO:<rcpt@example.net>\r\n"):
        server.receive_data(line)
        event = server.next_event()
        assert isinstance(event, (MailFrom, RcptTo)), event
        server.send(server.default_reply(event))
    server.receive_data(b"DATA\r\n")
    event = server.next_event()
    assert isinstance(event, Data), event
    server.send(server.default_reply(event))
    assert server.state is State.DATA, server
    return server


def client_in_data_state() -> Connection:
    """A client that got 354 for DATA from a real server Connection."""
    client = Connection(CLIENT, CLIENT_CONFIG)
    server = Connection(SERVER, SERVER_CONFIG)
    client.receive_data(server.send(Greeting(lines="mx.example.org ESMTP")))
    assert isinstance(client.next_event(), Greeting)
    for command in (
        Ehlo(domain="client.example.org"),
        MailFrom(reverse_path="sender@example.org"),
        RcptTo(forward_path="rcpt@example.net"),
        Data(),
    ):
        server.receive_data(client.send(command))
        received = server.next_event()
        assert received == command, received
        client.receive_data(server.send(server.default_reply(received)))
        assert isinstance(client.next_event(), Reply)
    assert client.state is State.DATA, client
    return client


# --------------------------------------------------------------------------- workloads


def feed_server_data(
    server: Connection, chunks: Sequence[bytes], sink: list[bytes] | None = None
) -> int:
    """Feed message chunks, draining next_event() after each; answer EndOfMessage.
    Returns the content octets received (and appends them to ``sink`` if given)."""
    receive = server.receive_data
    next_event = server.next_event
    total = 0
    ended = False
    for chunk in chunks:
        receive(chunk)
        while True:
            event = next_event()
            if event is NEED_DATA or event is PAUSED:
                break
            if isinstance(event, MessageData):
                total += len(event.data)
                if sink is not None:
                    sink.append(bytes(event.data))
            elif isinstance(event, EndOfMessage):
                server.send(server.default_reply(event))
                ended = True
            else:
                raise AssertionError(f"unexpected {event!r}")
    if not ended:
        raise AssertionError("no EndOfMessage")
    return total


def data_floor(wire: bytes) -> int:
    """The C-speed floor of (a): find the terminator, un-stuff, over the whole message."""
    at = wire.find(b"\r\n.\r\n")
    return at + len(wire.replace(b"\r\n..", b"\r\n."))


def feed_server_commands(server: Connection, chunks: Sequence[bytes]) -> int:
    """Feed pipelined command lines; answer each command with default_reply()."""
    receive = server.receive_data
    next_event = server.next_event
    default_reply = server.default_reply
    send = server.send
    count = 0
    for chunk in chunks:
        receive(chunk)
        while True:
            event = next_event()
            if not isinstance(event, Event):  # NEED_DATA (PAUSED cannot happen here)
                break
            send(default_reply(event))
            count += 1
    return count


def commands_floor(blob: bytes) -> int:
    return len(blob.split(b"\r\n"))


def drip(server: Connection, octets: Sequence[bytes]) -> int:
    """Feed one octet at a time, draining next_event() after each."""
    receive = server.receive_data
    next_event = server.next_event
    events = 0
    for octet in octets:
        receive(octet)
        while True:
            event = next_event()
            if event is NEED_DATA or event is PAUSED:
                break
            events += 1
    return events


def write_client_data(
    client: Connection, chunks: Sequence[bytes], sink: list[bytes] | None = None
) -> int:
    """Send content chunks, then EndOfMessage; returns the wire octets produced."""
    send = client.send_with_data_passthrough
    total = 0
    for chunk in chunks:
        for piece in send(MessageData(data=chunk)):
            total += len(piece)
            if sink is not None:
                sink.append(bytes(piece))
    for piece in send(EndOfMessage()):
        total += len(piece)
        if sink is not None:
            sink.append(bytes(piece))
    return total


def writer_floor(chunks: Sequence[bytes]) -> int:
    total = 0
    for chunk in chunks:
        total += len(chunk.replace(b"\r\n.", b"\r\n.."))
    return total


# ------------------------------------------------------------------------- measurement


def with_setup(setup: Callable[[], Connection], work: Callable[[Connection], object]) -> Maker:
    """A maker that runs ``setup`` untimed, then times ``work`` on its result."""

    def make() -> Timed:
        state = setup()
        return lambda: work(state)

    return make


def plain(work: Timed) -> Maker:
    """A maker for work that needs no fresh state (the floors)."""
    return lambda: work


def _clock(make: Maker, number: int) -> float:
    """The fastest of ``number`` timed calls, each after an untimed setup. (Each call is
    timed on its own, so a short floor looped many times also keeps its best call.)"""
    best = math.inf
    for _ in range(number):
        fn = make()
        gc.collect()
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            if enabled:
                gc.enable()
    return best


def _calibrate(make: Maker, min_time: float) -> int:
    """How many calls make one measurement last at least ``min_time`` in all (also a
    warm-up)."""
    once = _clock(make, 1)
    return max(1, math.ceil(min_time / max(once, 1e-9)))


def interleaved(makers: dict[str, Maker], repeats: int, min_time: float) -> dict[str, list[float]]:
    """Time each maker ``repeats`` times, round-robin, rotating which goes first."""
    numbers = {name: _calibrate(make, min_time) for name, make in makers.items()}
    names = list(makers)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(_clock(makers[name], numbers[name]))
    return times


@dataclass
class Row:
    scenario: str
    ours: str
    floor: str
    ratio: str


def _spread(times: list[float]) -> str:
    best = min(times)
    return f"best {best * 1e3:8.2f} ms, median {sorted(times)[len(times) // 2] * 1e3:8.2f} ms"


# --------------------------------------------------------------------------- scenarios


def scenario_data(sizes: Sizes) -> Row:
    msg = make_message(sizes.data_bytes)
    chunks = chunked(msg.wire, sizes.chunk)
    sink: list[bytes] = []
    got = feed_server_data(server_in_data_state(), chunks, sink)
    received = b"".join(sink)
    if received != msg.content or got != len(msg.content):
        raise AssertionError("(a) the server delivered something other than the un-stuffed content")
    print(
        f"(a) server DATA: {len(msg.wire) / MB:.1f} MB on the wire, {msg.lines} lines,"
        f" {msg.dot_lines} dot-stuffed, {len(chunks)} chunks of {sizes.chunk // KiB} KiB;"
        f" {len(sink)} MessageData events; content verified"
    )
    wire = msg.wire
    times = interleaved(
        {
            "ours": with_setup(server_in_data_state, lambda s: feed_server_data(s, chunks)),
            "floor": plain(lambda: data_floor(wire)),
        },
        sizes.repeats,
        sizes.min_time,
    )
    ours = len(wire) / min(times["ours"]) / MB
    floor = len(wire) / min(times["floor"]) / MB
    ratio = ours / floor
    print(f"    ours : {ours:9.1f} MB/s   ({_spread(times['ours'])})")
    print(f"    floor: {floor:9.1f} MB/s   ({_spread(times['floor'])})")
    verdict = "met" if ratio >= 0.5 else "NOT met"
    print(f"    ours/floor = {ratio:.3f}   (goal >= 0.5: {verdict})")
    return Row(
        f"(a) server DATA {len(wire) / MB:.0f} MB / {sizes.chunk // KiB} KiB",
        f"{ours:.0f} MB/s",
        f"{floor:.0f} MB/s",
        f"ours/floor {ratio:.3f} (goal >= 0.5: {verdict})",
    )


def scenario_commands(sizes: Sizes) -> Row:
    stream = make_commands(sizes.commands)
    chunks = chunked(stream.blob, sizes.chunk)
    # Check once: every line is accepted, and read as the command it is.
    server = server_ready()
    counts: dict[type, int] = {}
    for chunk in chunks:
        server.receive_data(chunk)
        while True:
            event = server.next_event()
            if not isinstance(event, Event):
                break
            if isinstance(event, InvalidCommand):
                raise AssertionError(f"(b) rejected: {event!r}")
            counts[type(event)] = counts.get(type(event), 0) + 1
            reply = server.default_reply(event)
            assert reply.code == 250, reply
            server.send(reply)
    if counts != stream.counts:
        raise AssertionError(f"(b) read {counts}, sent {stream.counts}")
    mix = ", ".join(f"{n} {t.__name__}" for t, n in stream.counts.items())
    print(
        f"(b) server commands: {stream.lines} lines ({mix}), {len(stream.blob) / MB:.2f} MB"
        f" in {len(chunks)} chunks of {sizes.chunk // KiB} KiB, each answered; verified"
    )
    blob = stream.blob
    times = interleaved(
        {
            "ours": with_setup(server_ready, lambda s: feed_server_commands(s, chunks)),
            "floor": plain(lambda: commands_floor(blob)),
        },
        sizes.repeats,
        sizes.min_time,
    )
    ours = stream.lines / min(times["ours"])
    floor = stream.lines / min(times["floor"])
    print(f"    ours : {ours:12,.0f} commands/s   ({_spread(times['ours'])})")
    print(f"    floor: {floor:12,.0f} commands/s   ({_spread(times['floor'])})")
    print(f"    ours/floor = {ours / floor:.5f}   floor/ours = {floor / ours:,.0f}x")
    per_command = min(times["ours"]) / stream.lines * 1e6
    print(f"    {per_command:.2f} us per command (parse + state + default_reply + send)")
    return Row(
        f"(b) server commands {stream.lines // 1000}k",
        f"{ours / 1e3:,.0f}k cmd/s ({per_command:.1f} us)",
        f"{floor / 1e6:,.1f}M cmd/s",
        f"ours/floor {ours / floor:.5f}, floor/ours {floor / ours:,.0f}x",
    )


def scenario_drip(sizes: Sizes) -> Row:
    inputs: dict[str, list[bytes]] = {}
    for kib in sizes.drip_kib:
        msg = make_message(kib * KiB, seed=SEED + kib)
        octets = [msg.wire[i : i + 1] for i in range(len(msg.wire))]
        # Check once that the dripped content arrives intact.
        server = server_in_data_state()
        sink: list[bytes] = []
        for octet in octets:
            server.receive_data(octet)
            while (event := server.next_event()) is not NEED_DATA and event is not PAUSED:
                if isinstance(event, MessageData):
                    sink.append(bytes(event.data))
        if b"".join(sink) != msg.content:
            raise AssertionError(f"(c) {kib} KiB dripped: content differs")
        inputs[f"{kib}"] = octets
    print(
        f"(c) drip: {', '.join(f'{k} KiB' for k in inputs)} of content (80-octet lines)"
        " one octet per receive_data(); content verified"
    )

    def maker(octets: list[bytes]) -> Maker:
        return with_setup(server_in_data_state, lambda s: drip(s, octets))

    # The drip itself runs for a second or so: one run is one measurement.
    times = interleaved({k: maker(v) for k, v in inputs.items()}, sizes.repeats, 0.0)
    best = {k: min(v) for k, v in times.items()}
    for k, t in best.items():
        per = t / (int(k) * KiB) * 1e6
        print(f"    {k:>3} KiB: {t * 1e3:9.1f} ms  ({per:.2f} us/octet; {_spread(times[k])})")
    keys = list(best)
    ratios = []
    for small, big in itertools.pairwise(keys):
        ratio = best[big] / best[small]
        ratios.append(f"t{big}/t{small} {ratio:.2f}")
    worst = max(best[b] / best[s] for s, b in itertools.pairwise(keys))
    # No floor normalises this one: on a busy machine re-run before believing a flag.
    verdict = "linear" if worst < 2.5 else "SUPERLINEAR? re-run on a quiet machine"
    print(f"    {', '.join(ratios)}   (2 = linear, 4 = quadratic: {verdict})")
    return Row(
        f"(c) drip {'/'.join(keys)} KiB, 1 octet",
        " / ".join(f"{best[k] * 1e3:.0f}" for k in keys) + " ms",
        "-",
        ", ".join(ratios) + f" ({verdict})",
    )


def scenario_writer(sizes: Sizes) -> Row:
    msg = make_message(sizes.writer_bytes, seed=SEED + 1)
    chunks = chunked(msg.content, sizes.chunk)
    sink: list[bytes] = []
    write_client_data(client_in_data_state(), chunks, sink)
    if b"".join(sink) != msg.wire:
        raise AssertionError("(d) the client wrote something other than the stuffed message")
    print(
        f"(d) client DATA writer: {len(msg.content) / MB:.1f} MB of content, {msg.dot_lines}"
        f" lines to stuff, {len(chunks)} chunks of {sizes.chunk // KiB} KiB + EndOfMessage;"
        " wire verified"
    )
    times = interleaved(
        {
            "ours": with_setup(client_in_data_state, lambda c: write_client_data(c, chunks)),
            "floor": plain(lambda: writer_floor(chunks)),
        },
        sizes.repeats,
        sizes.min_time,
    )
    ours = len(msg.content) / min(times["ours"]) / MB
    floor = len(msg.content) / min(times["floor"]) / MB
    ratio = ours / floor
    print(f"    ours : {ours:9.1f} MB/s   ({_spread(times['ours'])})")
    print(f"    floor: {floor:9.1f} MB/s   ({_spread(times['floor'])})")
    print(f"    ours/floor = {ratio:.3f}")
    return Row(
        f"(d) client writer {len(msg.content) / MB:.0f} MB / {sizes.chunk // KiB} KiB",
        f"{ours:.0f} MB/s",
        f"{floor:.0f} MB/s",
        f"ours/floor {ratio:.3f}",
    )


SCENARIOS: dict[str, Callable[[Sizes], Row] | None] = {
    "a": scenario_data,
    "b": scenario_commands,
    "c": scenario_drip,
    "d": scenario_writer,
    "e": None,  # filled in below
    "f": None,
    "g": None,
}


# --------------------------------------------------- (e) pipelining, (f) BDAT (ESMTP)

PIPE_CONFIG = Config(
    hostname="mx.example.org",
    extensions={"PIPELINING": (), "CHUNKING": (), "BINARYMIME": (), "8BITMIME": ()},
    max_recipients=1000,
)


def pair_ready() -> tuple[Connection, Connection]:
    """A client and a server core after greeting and EHLO (PIPELINING, CHUNKING)."""
    client = Connection(CLIENT, CLIENT_CONFIG)
    server = Connection(SERVER, PIPE_CONFIG)
    client.receive_data(server.send(Greeting(lines="mx.example.org ESMTP")))
    client.next_event()
    server.receive_data(client.send(Ehlo(domain="client.example.org")))
    client.receive_data(server.send(server.default_reply(server.next_event())))  # type: ignore[arg-type]
    client.next_event()
    return client, server


def pipelined_session(pair: tuple[Connection, Connection], transactions: int, rcpts: int) -> int:
    """Each transaction: the client writes MAIL + RCPTs + DATA as one group, the server
    answers each command, the client reads every reply; then an empty message and its
    reply. Returns the replies the client read."""
    client, server = pair
    mail = MailFrom(reverse_path="sender@example.org")
    recipients = [RcptTo(forward_path=f"rcpt{i}@example.net") for i in range(rcpts)]
    replies = 0
    for _ in range(transactions):
        wire = client.send(mail)
        for rcpt in recipients:
            wire += client.send(rcpt)
        wire += client.send(Data())
        server.receive_data(wire)
        out = bytearray()
        while True:
            event = server.next_event()
            if not isinstance(event, Event):
                break
            out += server.send(server.default_reply(event))
        client.receive_data(out)
        while isinstance(client.next_event(), Reply):
            replies += 1
        server.receive_data(client.send(EndOfMessage()))
        end = server.next_event()
        client.receive_data(server.send(server.default_reply(end)))  # type: ignore[arg-type]
        client.next_event()
        replies += 1
    return replies


def scenario_pipelining(sizes: Sizes) -> Row:
    transactions, rcpts = sizes.pipelined
    replies = pipelined_session(pair_ready(), transactions, rcpts)
    expected = transactions * (rcpts + 3)
    if replies != expected:
        raise AssertionError(f"(e) {replies} replies, expected {expected}")
    blob = (
        b"MAIL FROM:<sender@example.org>\r\n"
        + b"".join(b"RCPT TO:<rcpt%d@example.net>\r\n" % i for i in range(rcpts))
        + b"DATA\r\n"
    )
    blob *= transactions
    commands = transactions * (rcpts + 3)
    print(
        f"(e) pipelined session: {transactions} transactions x (MAIL + {rcpts} RCPT + DATA +"
        f" end of data), both roles, {commands} replies verified"
    )
    times = interleaved(
        {
            # includes building the pair (greeting + EHLO): small next to the session
            "ours": plain(lambda: pipelined_session(pair_ready(), transactions, rcpts)),
            "floor": plain(lambda: commands_floor(blob)),
        },
        sizes.repeats,
        sizes.min_time,
    )
    ours = commands / min(times["ours"])
    floor = commands / min(times["floor"])
    print(f"    ours : {ours:12,.0f} commands/s both roles   ({_spread(times['ours'])})")
    print(f"    floor: {floor:12,.0f} lines/s split          ({_spread(times['floor'])})")
    print(f"    floor/ours = {floor / ours:,.0f}x; {1e6 / ours:.1f} us per command round trip")
    return Row(
        f"(e) pipelined {transactions}x{rcpts} RCPT",
        f"{ours / 1e3:,.0f}k cmd/s",
        f"{floor / 1e6:,.1f}M lines/s",
        f"ours/floor {ours / floor:.5f}, floor/ours {floor / ours:,.0f}x",
    )


def bdat_transfer(body: bytes, chunk: int, read: int) -> int:
    client, server = pair_ready()
    for command in (
        MailFrom(reverse_path="a@example.org", params={"BODY": "BINARYMIME"}),
        RcptTo(forward_path="b@example.net"),
    ):
        server.receive_data(client.send(command))
        client.receive_data(server.send(server.default_reply(server.next_event())))  # type: ignore[arg-type]
        client.next_event()
    view = memoryview(body)
    received = 0
    offset = 0
    while offset < len(body):
        piece = view[offset : offset + chunk]
        last = offset + chunk >= len(body)
        wire = [client.send(sansio_smtp.Bdat(size=len(piece), last=last))]
        wire += client.send_with_data_passthrough(MessageData(data=piece))
        for part in wire:
            part_view = memoryview(part)
            for i in range(0, len(part_view), read):
                server.receive_data(part_view[i : i + read])
                while True:
                    event = server.next_event()
                    if isinstance(event, MessageData):
                        received += len(event.data)
                    elif isinstance(event, (sansio_smtp.Bdat, EndOfMessage)):
                        continue
                    else:
                        break
        client.receive_data(server.send(server.default_reply(server.pending[0])))
        client.next_event()
        offset += chunk
    return received


def scenario_bdat(sizes: Sizes) -> Row:
    rng = random.Random(SEED)
    body = rng.randbytes(sizes.bdat_bytes)
    chunk = 1024 * KiB
    got = bdat_transfer(body, chunk, sizes.chunk)
    if got != len(body):
        raise AssertionError(f"(f) received {got} of {len(body)} octets")
    pieces = chunked(body, sizes.chunk)
    print(
        f"(f) BDAT: {len(body) / MB:.1f} MB of random binary content in {chunk // KiB} KiB"
        f" chunks, read {sizes.chunk // KiB} KiB at a time; length verified"
    )
    times = interleaved(
        {
            "ours": plain(lambda: bdat_transfer(body, chunk, sizes.chunk)),
            "floor": plain(lambda: len(b"".join(pieces))),
        },
        sizes.repeats,
        sizes.min_time,
    )
    ours = len(body) / min(times["ours"]) / MB
    floor = len(body) / min(times["floor"]) / MB
    print(f"    ours : {ours:9.1f} MB/s   ({_spread(times['ours'])})")
    print(f"    floor: {floor:9.1f} MB/s   ({_spread(times['floor'])})")
    print(f"    ours/floor = {ours / floor:.3f}")
    return Row(
        f"(f) BDAT {len(body) / MB:.0f} MB binary",
        f"{ours:.0f} MB/s",
        f"{floor:.0f} MB/s",
        f"ours/floor {ours / floor:.3f}",
    )


SCENARIOS["e"] = scenario_pipelining
SCENARIOS["f"] = scenario_bdat


# ------------------------------------------------------------ (g) one message per transaction

#: (g)'s message: 1 KiB of content in 80-octet lines, one of them starting with "."
MESSAGE_1K = make_message(1 * KiB, seed=SEED + 7)


def per_message_session(pair: tuple[Connection, Connection], messages: int) -> int:
    """What a PIPELINING client and a server core do per message: MAIL + RCPT + DATA in
    one write, each answered; the content (one MessageData) and its end, answered; every
    reply read back by the client. Returns the messages the server accepted."""
    client, server = pair
    content = MESSAGE_1K.content
    mail = MailFrom(reverse_path="sender@example.org")
    rcpt = RcptTo(forward_path="rcpt@example.net")
    data = Data()
    end = EndOfMessage()
    accepted = 0
    for _ in range(messages):
        server.receive_data(client.send(mail) + client.send(rcpt) + client.send(data))
        out = bytearray()
        while True:
            event = server.next_event()
            if not isinstance(event, Event):
                break
            out += server.send(server.default_reply(event))
        client.receive_data(out)
        while isinstance(client.next_event(), Reply):
            pass
        for piece in client.send_with_data_passthrough(MessageData(data=content)):
            server.receive_data(piece)
        server.receive_data(client.send(end))
        while True:
            event = server.next_event()
            if isinstance(event, EndOfMessage):
                break
            assert isinstance(event, MessageData), event
        client.receive_data(server.send(server.default_reply(event)))
        reply = client.next_event()
        assert isinstance(reply, Reply), reply
        accepted += reply.code == 250
    return accepted


def messages_floor(commands: bytes, wire: bytes, messages: int) -> int:
    total = 0
    for _ in range(messages):
        total += len(commands.split(b"\r\n")) + wire.find(b"\r\n.\r\n")
    return total


def scenario_messages(sizes: Sizes) -> Row:
    count = sizes.messages
    accepted = per_message_session(pair_ready(), count)
    if accepted != count:
        raise AssertionError(f"(g) {accepted} of {count} messages accepted")
    commands = b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<rcpt@example.net>\r\nDATA\r\n"
    wire = MESSAGE_1K.wire
    print(
        f"(g) messages: {count} transactions of one {len(MESSAGE_1K.content)}-octet message"
        " (MAIL + RCPT + DATA pipelined, content, end), both roles; every reply verified"
    )
    times = interleaved(
        {
            # includes building the pair (greeting + EHLO): small next to the session
            "ours": plain(lambda: per_message_session(pair_ready(), count)),
            "floor": plain(lambda: messages_floor(commands, wire, count)),
        },
        sizes.repeats,
        sizes.min_time,
    )
    ours = count / min(times["ours"])
    floor = count / min(times["floor"])
    per_message = min(times["ours"]) / count * 1e6
    print(f"    ours : {ours:12,.0f} messages/s both roles   ({_spread(times['ours'])})")
    print(f"    floor: {floor:12,.0f} messages/s split+find  ({_spread(times['floor'])})")
    print(f"    floor/ours = {floor / ours:,.0f}x; {per_message:.1f} us per message, both roles")
    return Row(
        f"(g) {count} x 1 KiB messages, both roles",
        f"{ours / 1e3:,.1f}k msg/s ({per_message:.1f} us)",
        f"{floor / 1e6:,.2f}M msg/s",
        f"ours/floor {ours / floor:.5f}, floor/ours {floor / ours:,.0f}x",
    )


SCENARIOS["g"] = scenario_messages


# ---------------------------------------------------------------------------- profiling


def profile(letter: str, sizes: Sizes, top: int = 25) -> None:
    """One run of a scenario's workload under cProfile; prints the top functions."""
    fn: Timed
    if letter == "a":
        chunks = chunked(make_message(sizes.data_bytes).wire, sizes.chunk)
        server = server_in_data_state()
        fn = lambda: feed_server_data(server, chunks)  # noqa: E731
    elif letter == "b":
        chunks = chunked(make_commands(sizes.commands).blob, sizes.chunk)
        server = server_ready()
        fn = lambda: feed_server_commands(server, chunks)  # noqa: E731
    elif letter == "c":
        wire = make_message(sizes.drip_kib[-1] * KiB).wire
        octets = [wire[i : i + 1] for i in range(len(wire))]
        server = server_in_data_state()
        fn = lambda: drip(server, octets)  # noqa: E731
    elif letter == "d":
        chunks = chunked(make_message(sizes.writer_bytes).content, sizes.chunk)
        client = client_in_data_state()
        fn = lambda: write_client_data(client, chunks)  # noqa: E731
    elif letter == "e":
        transactions, rcpts = sizes.pipelined
        pair = pair_ready()
        fn = lambda: pipelined_session(pair, transactions, rcpts)  # noqa: E731
    else:
        pair = pair_ready()
        fn = lambda: per_message_session(pair, sizes.messages)  # noqa: E731
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler)
    units = {
        "b": (sizes.commands, "command"),
        "e": (sizes.pipelined[0] * (sizes.pipelined[1] + 3), "command round trip"),
        "g": (sizes.messages, "message"),
    }.get(letter)
    if units is not None:
        calls = stats.total_calls  # type: ignore[attr-defined]
        print(f"--- {calls / units[0]:.1f} function calls per {units[1]} ---")
    stats.sort_stats("cumulative")
    print(f"--- cProfile of scenario ({letter}): sansio_smtp functions by cumulative time ---")
    stats.print_stats(r"sansio_smtp[/\\]", top)
    stats.sort_stats("tottime")
    print("--- the same run, everything (builtins too) by own time ---")
    stats.print_stats(top)


# --------------------------------------------------------------------------------- main


def _table(rows: list[Row]) -> str:
    head = Row("scenario", "ours", "floor", "ratio")
    cols = [
        max(len(getattr(r, name)) for r in [head, *rows]) for name in ("scenario", "ours", "floor")
    ]
    lines = []
    for r in [head, *rows]:
        lines.append(
            f"{r.scenario:<{cols[0]}}  {r.ours:>{cols[1]}}  {r.floor:>{cols[2]}}  {r.ratio}"
        )
        if r is head:
            lines.append("-" * (sum(cols) + 6 + max(len(x.ratio) for x in [head, *rows])))
    return "\n".join(lines)


def _revision() -> str:
    """The commit benchmarked, and whether sansio_smtp/ has uncommitted changes (read-only
    git calls; "" when git is unavailable)."""
    git = ["git", "--no-optional-locks", "-C", str(_ROOT)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "sansio_smtp"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    if not head:
        return ""
    return f" at {head}" + (" + uncommitted changes in sansio_smtp/" if dirty else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--repeats", type=int, help="measurements per side (default 5, quick 3)")
    parser.add_argument("--only", default="abcdefg", help="scenarios to run, e.g. 'a,c'")
    parser.add_argument(
        "--profile", choices="abcdeg", help="cProfile one run of a scenario (a-e, g) instead"
    )
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    if args.profile:
        profile(args.profile, sizes)
        return 0
    letters = [c for c in args.only.lower() if c in SCENARIOS]
    print(
        f"sansio_smtp {sansio_smtp.__version__} from {Path(sansio_smtp.__file__).parent}"
        f"{_revision()};"
        f" Python {sys.version.split()[0]}; {'quick' if args.quick else 'full'} run,"
        f" best of {sizes.repeats}, interleaved with the floors"
    )
    start = time.perf_counter()
    rows = []
    for letter in letters:
        scenario = SCENARIOS[letter]
        assert scenario is not None
        rows.append(scenario(sizes))
        print()
    print(_table(rows))
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
