"""The delivery worker end to end on loopback: a DNS server on 127.0.0.1 publishes MX
records for three test domains whose mail hosts listen on 127.0.0.2-4, one port."""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import random
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sansio_smtp import Config, RcptTo, Reply
from sansio_smtp.adapters import AsyncioServer, MemoryHandler, Session, SyncServer
from sansio_smtp.delivery import (
    Deferred,
    Delivered,
    DeliveryWorker,
    Failed,
    RecipientState,
    RetryPolicy,
    SQLiteQueue,
    open_queue,
    parse_report,
)

from .dnsserver import dns_server
from .test_queue import _fresh_database, postgres_url  # noqa: F401 - a fixture

pytest.importorskip("dns.asyncresolver")

from sansio_smtp.delivery import Resolver

ROOT = Path(__file__).resolve().parent.parent
HOSTS = {"a.test": "127.0.0.2", "b.test": "127.0.0.3", "s.test": "127.0.0.4"}
ZONE = {
    **{d: [("MX", (10, f"mx.{d}"))] for d in HOSTS},
    **{f"mx.{d}": [("A", ip)] for d, ip in HOSTS.items()},
}
MESSAGE = (
    b"From: alice@s.test\r\nTo: bob@a.test, carol@b.test, dave@b.test\r\n"
    b"Subject: plans\r\nMessage-ID: <plans@s.test>\r\n\r\nsee you\r\n"
)


class FirstRcptDeferred(MemoryHandler):
    """451 to the first RCPT it sees, 250 afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
        self.seen += 1
        return (
            Reply(code=451, lines="Try again later", enhanced="4.3.0") if self.seen == 1 else None
        )


class RefusesCarol(MemoryHandler):
    def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
        if event.forward_path.local_part == "carol":
            return Reply(code=550, lines="No such user", enhanced="5.1.1")
        return None


def _free_port() -> int:
    # one port free on every address (127.0.0.2-4 are loopback on Linux)
    for _ in range(20):
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
            port = s.getsockname()[1]
        try:
            for ip in HOSTS.values():
                with socket.socket() as t:
                    t.bind((ip, port))
        except OSError:
            continue
        return port
    pytest.skip("no port free on 127.0.0.2-4")


@contextlib.asynccontextmanager
async def mail_hosts(port: int) -> AsyncIterator[dict[str, MemoryHandler]]:
    handlers = {"a.test": FirstRcptDeferred(), "b.test": RefusesCarol(), "s.test": MemoryHandler()}
    async with contextlib.AsyncExitStack() as stack:
        for domain, ip in HOSTS.items():
            server = AsyncioServer(
                handlers[domain], host=ip, port=port, config=Config(hostname=f"mx.{domain}")
            )
            await stack.enter_async_context(server)
        yield handlers


def test_deliver_retry_and_bounce(tmp_path: object) -> None:
    try:
        socket.create_server(("127.0.0.2", 0)).close()
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")

    async def scenario() -> None:
        port = _free_port()
        clock = [1_800_000_000.0]
        with dns_server(ZONE) as ns:
            async with mail_hosts(port) as handlers:
                queue = SQLiteQueue(f"{tmp_path}/queue.sqlite")
                worker = DeliveryWorker(
                    queue,
                    resolver=Resolver([ns], timeout=5),
                    hostname="mta.s.test",
                    port=port,
                    policy=RetryPolicy(),
                    rng=random.Random(7),
                    clock=lambda: clock[0],
                    timeout=10,
                )
                mid = queue.enqueue(
                    "alice@s.test",
                    ["bob@a.test", "carol@b.test", "dave@b.test"],
                    MESSAGE,
                    now=clock[0],
                )
                first = {r.recipient: r for r in await worker.run()}
                # RFC 5321 §4.2.1: 451 transient (retry in 30 min, §4.5.4.1), 550 permanent
                assert isinstance(first["bob@a.test"].outcome, Deferred)
                assert first["bob@a.test"].outcome.retry_at == clock[0] + 1800
                assert first["bob@a.test"].reply == "451 4.3.0 Try again later"
                assert isinstance(first["carol@b.test"].outcome, Failed)
                assert first["carol@b.test"].reply == "550 5.1.1 No such user"
                assert isinstance(first["dave@b.test"].outcome, Delivered)
                assert first["carol@b.test"].bounce is not None
                assert [str(r) for r in handlers["b.test"].messages[0].rcpt_tos] == ["dave@b.test"]

                # the bounce is due now: it reaches the sender's domain from <>
                second = await worker.run()
                assert [(r.recipient, type(r.outcome)) for r in second] == [
                    ("alice@s.test", Delivered)
                ]
                (bounce,) = handlers["s.test"].messages
                assert bounce.mail_from is None  # RFC 3461 §6.2: the null reverse-path
                report = parse_report(bounce.content)
                assert report is not None
                (status,) = report.recipients
                assert (status.final_recipient, str(status.status)) == ("carol@b.test", "5.1.1")
                assert status.diagnostic_code == "550 5.1.1 No such user"
                assert report.original is not None and b"Subject: plans" in report.original
                flufl = pytest.importorskip("flufl.bounce")
                _temporary, permanent = flufl.all_failures(email.message_from_bytes(bounce.content))
                assert permanent == {b"carol@b.test"}

                # nothing is due before the retry time; at it, bob is delivered once
                assert await worker.run() == []
                clock[0] += 1800
                third = await worker.run()
                assert [(r.recipient, type(r.outcome)) for r in third] == [
                    ("bob@a.test", Delivered)
                ]
                assert [str(r) for m in handlers["a.test"].messages for r in m.rcpt_tos] == [
                    "bob@a.test"
                ]
                assert queue.messages() == []  # every recipient final: the message is gone
                assert queue.get(mid) is None
                queue.close()

    asyncio.run(scenario())


def test_unreachable_hosts_defer_and_expire(tmp_path: object) -> None:
    # RFC 5321 §4.5.4.1: a destination that does not answer is retried until the give-up
    # time, then bounced with 4.4.7 (RFC 3463 §3.5)
    async def scenario() -> None:
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        zone = {"gone.test": [("MX", (10, "mx.gone.test"))], "mx.gone.test": [("A", "127.0.0.1")]}
        clock = [1_800_000_000.0]
        with dns_server(zone) as ns:
            queue = SQLiteQueue(":memory:")
            worker = DeliveryWorker(
                queue,
                resolver=Resolver([ns], timeout=5),
                hostname="mta.s.test",
                port=port,
                policy=RetryPolicy(give_up=3600),
                clock=lambda: clock[0],
                timeout=5,
            )
            mid = queue.enqueue(None, ["x@gone.test"], b"Subject: x\r\n\r\nx\r\n", now=clock[0])
            (first,) = await worker.run()
            assert isinstance(first.outcome, Deferred)
            clock[0] += 3600
            (last,) = await worker.run()
            assert isinstance(last.outcome, Failed)
            assert str(last.outcome.result.status) == "4.4.7"
            assert last.bounce is None  # the sender was <>: no report about a report
            assert queue.get(mid) is None
            assert queue.messages() == []
            queue.close()

    asyncio.run(scenario())


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "sansio_smtp", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_deliver_queue_run_flush_list(tmp_path: Path) -> None:
    # issue 14 "Done when": deliver --queue, queue run (the 451 and the 550; the bounce
    # reaches the sender's domain from <>), queue flush (the deferred recipient delivered
    # once), queue list (empty)
    try:
        socket.create_server(("127.0.0.2", 0)).close()
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")
    port = _free_port()
    handlers = {"a.test": FirstRcptDeferred(), "b.test": RefusesCarol(), "s.test": MemoryHandler()}
    servers = [
        SyncServer(handlers[d], host=ip, port=port, config=Config(hostname=f"mx.{d}")).start()
        for d, ip in HOSTS.items()
    ]
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE)
    queue = str(tmp_path / "queue.sqlite")
    try:
        with dns_server(ZONE) as (ns_host, ns_port):
            common = ["--dns-server", f"{ns_host}:{ns_port}", "--port", str(port)]
            common += ["--hostname", "mta.s.test"]
            done = _cli(
                "deliver", "--from", "alice@s.test", "--to", "bob@a.test", "--to",
                "carol@b.test", "--to", "dave@b.test", "--file", str(message),
                "--queue", queue, *common,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("queued ")

            ran = _cli("queue", "run", "--queue", queue, *common)
            assert ran.returncode == 0, ran.stderr
            lines = ran.stdout.splitlines()
            assert any(
                line.startswith("bob@a.test: deferred: 451 4.3.0 Try again later") for line in lines
            ), lines
            assert "carol@b.test: failed: 550 5.1.1 No such user" in lines
            assert any(line.startswith("dave@b.test: delivered: 250") for line in lines)
            assert any(line.startswith("alice@s.test: delivered: 250") for line in lines)

            (bounce,) = handlers["s.test"].messages
            assert bounce.mail_from is None
            report = parse_report(bounce.content)
            assert report is not None
            assert [(r.final_recipient, str(r.status)) for r in report.recipients] == [
                ("carol@b.test", "5.1.1")
            ]
            assert report.original is not None and b"Message-ID: <plans@s.test>" in report.original
            flufl = pytest.importorskip("flufl.bounce")
            _temporary, permanent = flufl.all_failures(email.message_from_bytes(bounce.content))
            assert permanent == {b"carol@b.test"}

            listed = _cli("queue", "list", "--queue", queue)
            assert "bob@a.test: queued, 1 attempt(s)" in listed.stdout

            flushed = _cli("queue", "flush", "--queue", queue, *common)
            assert flushed.returncode == 0, flushed.stderr
            assert [line.split(":")[:2] for line in flushed.stdout.splitlines()] == [
                ["bob@a.test", " delivered"]
            ]
            delivered_to_a = [str(r) for m in handlers["a.test"].messages for r in m.rcpt_tos]
            assert delivered_to_a == ["bob@a.test"]  # exactly once

            assert _cli("queue", "list", "--queue", queue).stdout == "the queue is empty\n"

            # without --queue: one attempt now; failures print the bounce; exit 1
            once = _cli(
                "deliver", "--from", "alice@s.test", "--to", "carol@b.test",
                "--file", str(message), *common,
            )  # fmt: skip
            assert once.returncode == 1
            assert once.stdout.startswith("carol@b.test: failed: 550 5.1.1 No such user")
            assert "the bounce that would be sent to <alice@s.test>" in once.stdout
            assert "Final-Recipient: rfc822; carol@b.test" in once.stdout
    finally:
        for server in servers:
            server.shutdown(timeout=2)


class StallsAtRcpt(MemoryHandler):
    """Holds the first RCPT's reply until released: a worker can be killed meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
        if not self.release.is_set():
            self.entered.set()
            self.release.wait(20)
        return None


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_kill_9_mid_delivery_loses_and_duplicates_nothing(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    # issue 14: a worker killed mid-delivery leaves the recipient queued; the next worker
    # takes the message at once (the dead worker's lease is known dead) and delivers once,
    # on either queue
    try:
        socket.create_server(("127.0.0.2", 0)).close()
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")
    port = _free_port()
    handler = StallsAtRcpt()
    server = SyncServer(handler, host="127.0.0.2", port=port, config=Config(hostname="mx.a.test"))
    server.start()
    if kind == "sqlite":
        queue_path = str(tmp_path / "queue.sqlite")
    else:
        queue_path = _fresh_database(request.getfixturevalue("postgres_url"))
    try:
        with dns_server(ZONE) as (ns_host, ns_port):
            common = ["--dns-server", f"{ns_host}:{ns_port}", "--port", str(port)]
            common += ["--hostname", "mta.s.test"]
            message = tmp_path / "m.eml"
            message.write_bytes(MESSAGE)
            queued = _cli(
                "deliver", "--from", "alice@s.test", "--to", "bob@a.test",
                "--file", str(message), "--queue", queue_path, *common,
            )  # fmt: skip
            assert queued.returncode == 0, queued.stderr
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            worker = subprocess.Popen(
                [sys.executable, "-m", "sansio_smtp", "queue", "run", "--queue", queue_path,
                 *common],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            assert handler.entered.wait(60), "the worker never reached RCPT"
            worker.kill()  # SIGKILL, mid-session
            worker.wait(timeout=30)
            handler.release.set()
            with contextlib.closing(open_queue(queue_path)) as queue:
                (msg,) = queue.messages()
                (rcpt,) = msg.recipients
                assert rcpt.state is RecipientState.QUEUED and rcpt.attempts == 0
            assert handler.messages == []
            again = _cli("queue", "run", "--queue", queue_path, *common)
            assert again.returncode == 0, again.stderr
            assert again.stdout.startswith("bob@a.test: delivered: 250")
            assert [str(r) for m in handler.messages for r in m.rcpt_tos] == ["bob@a.test"]
            assert _cli("queue", "list", "--queue", queue_path).stdout == "the queue is empty\n"
    finally:
        handler.release.set()
        server.shutdown(timeout=2)


def test_mta_sts_enforce_keeps_to_the_named_mx_with_verified_tls(tmp_path: Path) -> None:
    # RFC 8461 §4.2: under an enforce policy only the MX hosts it names are tried, each
    # with TLS and a certificate valid for its name; a better-preferred MX it does not
    # name (here one that would take the message in the clear) gets nothing
    trustme = pytest.importorskip("trustme")
    from sansio_smtp.delivery import MtaSts, fetch_policy_https

    from .test_mtasts import https_policy_server

    try:
        socket.create_server(("127.0.0.3", 0)).close()
    except OSError:
        pytest.skip("127.0.0.3 is not a loopback address here")
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mx.secure.test").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    zone = {
        "secure.test": [("MX", (5, "rogue.other.test")), ("MX", (10, "mx.secure.test"))],
        "mx.secure.test": [("A", "127.0.0.2")],
        "rogue.other.test": [("A", "127.0.0.3")],
        "_mta-sts.secure.test": [("TXT", "v=STSv1; id=20261203;")],
    }
    policy = b"version: STSv1\nmode: enforce\nmx: mx.secure.test\nmax_age: 86400\n"

    async def scenario(with_policy: bool) -> tuple[MemoryHandler, MemoryHandler]:
        port = _free_port()
        good, rogue = MemoryHandler(), MemoryHandler()
        with dns_server(zone) as ns, https_policy_server(policy) as (web_port, web_tls):
            resolver = Resolver([ns], timeout=5)

            async def fetch(url: str) -> str:
                return await asyncio.to_thread(
                    fetch_policy_https, url, context=web_tls, connect_to=("127.0.0.1", web_port)
                )

            async with (
                AsyncioServer(good, host="127.0.0.2", port=port, tls_context=server_tls),
                AsyncioServer(rogue, host="127.0.0.3", port=port),
            ):
                queue = SQLiteQueue(":memory:")
                worker = DeliveryWorker(
                    queue,
                    resolver=resolver,
                    hostname="mta.s.test",
                    port=port,
                    timeout=10,
                    ssl_context=client_tls,
                    mta_sts=MtaSts(resolver, fetch=fetch) if with_policy else None,
                )
                queue.enqueue("a@s.test", ["bob@secure.test"], MESSAGE, now=0.0)
                (report,) = await worker.run()
                assert isinstance(report.outcome, Delivered)
                queue.close()
        return good, rogue

    good, rogue = asyncio.run(scenario(with_policy=True))
    assert [m.protocol for m in good.messages] == ["ESMTPS"] and rogue.messages == []
    good, rogue = asyncio.run(scenario(with_policy=False))  # without it, preference wins
    assert good.messages == [] and len(rogue.messages) == 1


def test_an_unexpected_error_defers_and_the_queue_goes_on(tmp_path: Path) -> None:
    # one message whose attempt raises (a bug, a broken resolver) is deferred with backoff,
    # like a failed connection (RFC 5321 §4.5.4.1); the other messages are still delivered
    try:
        socket.create_server(("127.0.0.2", 0)).close()
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")

    class Flaky(Resolver):
        async def route(self, domain: str, **kwargs: object):  # type: ignore[no-untyped-def]
            if domain == "b.test":
                raise RuntimeError("resolver bug")
            return await super().route(domain, **kwargs)  # type: ignore[arg-type]

    async def scenario() -> None:
        port = _free_port()
        with dns_server(ZONE) as ns:
            handler = MemoryHandler()
            async with AsyncioServer(handler, host="127.0.0.2", port=port):
                queue = SQLiteQueue(":memory:")
                worker = DeliveryWorker(
                    queue,
                    resolver=Flaky([ns], timeout=5),
                    hostname="mta.s.test",
                    port=port,
                    clock=lambda: 1000.0,
                    timeout=10,
                )
                queue.enqueue("a@s.test", ["x@b.test"], MESSAGE, now=1000.0)
                queue.enqueue("a@s.test", ["bob@a.test"], MESSAGE, now=1000.0)
                reports = {r.recipient: r for r in await worker.run()}
                assert isinstance(reports["bob@a.test"].outcome, Delivered)
                broken = reports["x@b.test"].outcome
                assert isinstance(broken, Deferred) and broken.retry_at == 1000.0 + 1800
                assert "resolver bug" in reports["x@b.test"].reply
                (left,) = queue.messages()
                assert left.recipients[0].attempts == 1
                queue.close()

    asyncio.run(scenario())
