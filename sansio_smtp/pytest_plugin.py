# pytest plugin: an in-process SMTP server that collects what it receives, for testing code
# that sends mail. Registered through the ``pytest11`` entry point (or ``-p
# sansio_smtp.pytest_plugin``).
#
# Strategy: the blocking SyncServer on 127.0.0.1, an ephemeral port and a background thread,
# so the fixture works in plain and in async tests alike and needs no event loop; a
# MemoryHandler collects the messages, and a few knobs make it refuse what a test needs
# refused. Rules: every wait is bounded; the server is shut down when the test ends, whatever
# happened; this module imports nothing of the adapters until a fixture is used, so the
# plugin costs a pytest run that never uses it next to nothing.
"""pytest fixtures for testing code that sends mail.

    def test_signup_sends_mail(smtp_server):
        send_welcome_mail(host=smtp_server.host, port=smtp_server.port)
        (message,) = smtp_server.wait_for(1)
        assert message.rcpt_tos == ["new.user@example.org"]
        assert message.message["Subject"] == "Welcome"

``smtp_server_factory(...)`` starts more servers. Besides any SyncServer option
(``tls_context=...``, ``config=Config(...)``), it takes:

- ``handler``: your own Handler (a MemoryHandler subclass keeps ``messages`` working);
- ``refuse_recipients`` / ``refuse_senders``: addresses to refuse (550 5.1.1 / 550 5.1.8),
  or a mapping from address to the Reply to refuse it with;
- ``fail_messages``: the numbers (1 = the first message) of messages to fail with
  ``451 4.3.0``, or a mapping from number to Reply;
- ``users``: ``{user: password}``: AUTH PLAIN and LOGIN offered over plaintext (this is a
  test server on loopback), and MAIL refused with ``530 5.7.0`` until a client logs in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._events import MailFrom, RcptTo, Reply
    from .adapters import Envelope, MemoryHandler, Session, SyncServer

__all__ = ["SMTPTestServer", "smtp_server", "smtp_server_factory"]

#: what the fixture's server advertises unless a Config is given
TEST_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "PIPELINING": (),
    "8BITMIME": (),
    "SMTPUTF8": (),
    "CHUNKING": (),
    "BINARYMIME": (),
    "DSN": (),
    "ENHANCEDSTATUSCODES": (),
}

Refusals = Iterable[str] | Mapping[str, "Reply"]


class SMTPTestServer:
    """A running server and what it received.

    - ``host``, ``port``: where to send; ``messages``: an Envelope per accepted message
      (``mail_from``, ``rcpt_tos`` - addresses equal to their text -, ``content``, and
      ``message``, the content parsed as an ``email.message.EmailMessage``), in arrival
      order.
    - ``wait_for(count, timeout=5)``: wait until ``count`` messages have arrived and
      return them (raises AssertionError on timeout); ``clear()`` forgets them.
    - ``server``: the SyncServer itself (``errors`` lists handler/connection errors).
    """

    def __init__(self, server: SyncServer, handler: object) -> None:
        self.server = server
        self.handler = handler
        self.host = "127.0.0.1"
        self.port = server.port

    @property
    def messages(self) -> list[Envelope]:
        messages: list[Envelope] | None = getattr(self.handler, "messages", None)
        if messages is None:
            raise AttributeError("the handler collects no messages (use a MemoryHandler)")
        return messages

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Envelope]:
        wait = getattr(self.handler, "wait_for", None)
        if wait is None:
            raise AttributeError("the handler collects no messages (use a MemoryHandler)")
        if not wait(count, timeout):
            raise AssertionError(
                f"expected {count} message(s) within {timeout} s, got {len(self.messages)}"
            )
        return list(self.messages)

    def clear(self) -> None:
        self.messages.clear()

    def close(self) -> None:
        self.server.shutdown(timeout=2.0)

    def __repr__(self) -> str:
        count = len(getattr(self.handler, "messages", ()))
        return f"<SMTPTestServer {self.host}:{self.port} messages={count}>"


def _key(text: str) -> tuple[str, str | None]:
    """An address as the refusal lists match it: the domain without case (RFC 5321 §2.4)."""
    from ._address import Address

    address = Address.parse(text[1:-1] if text.startswith("<") else text)
    return address.local_part, None if address.domain is None else address.domain.lower()


def _refusals(given: Refusals, default: Reply) -> dict[tuple[str, str | None], Reply]:
    if isinstance(given, Mapping):
        return {_key(k): v for k, v in given.items()}
    return {_key(k): default for k in given}


def _test_handler(
    *,
    refuse_senders: Refusals,
    refuse_recipients: Refusals,
    fail_messages: Iterable[int] | Mapping[int, Reply],
    require_auth: bool,
) -> MemoryHandler:
    """A MemoryHandler that refuses what the knobs say."""
    from ._events import Reply
    from .adapters import MemoryHandler

    senders = _refusals(refuse_senders, Reply(code=550, lines="Sender refused", enhanced="5.1.8"))
    recipients = _refusals(
        refuse_recipients, Reply(code=550, lines="Mailbox unavailable", enhanced="5.1.1")
    )
    temporary = Reply(code=451, lines="Temporary failure, try again", enhanced="4.3.0")
    failures = (
        dict(fail_messages)
        if isinstance(fail_messages, Mapping)
        else dict.fromkeys(fail_messages, temporary)
    )

    class TestHandler(MemoryHandler):
        def __init__(self) -> None:
            super().__init__()
            self.ended = 0  # messages that reached their end, accepted or not

        def mail(self, session: Session, event: MailFrom) -> Reply | None:
            if require_auth and session.authenticated_user is None:
                # RFC 4954 §6: 530 5.7.0 Authentication required
                return Reply(code=530, lines="Authentication required", enhanced="5.7.0")
            path = event.reverse_path
            return None if path is None else senders.get(_key(str(path)))

        def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
            return recipients.get(_key(str(event.forward_path)))

        def data(self, session: Session, envelope: Envelope) -> Reply | None:
            with self._cond:
                self.ended += 1
                failure = failures.get(self.ended)
            return failure if failure is not None else super().data(session, envelope)

    return TestHandler()


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., SMTPTestServer]]:
    """Start SMTPTestServers (see the module's docstring for the options); all are shut
    down after the test."""
    servers: list[SMTPTestServer] = []

    def start(
        handler: object = None,
        *,
        refuse_senders: Refusals = (),
        refuse_recipients: Refusals = (),
        fail_messages: Iterable[int] | Mapping[int, Reply] = (),
        users: Mapping[str, str] | None = None,
        **options: Any,
    ) -> SMTPTestServer:
        from .adapters import SyncServer
        from .config import Config

        knobs = bool(refuse_senders or refuse_recipients or fail_messages or users)
        if handler is None:
            handler = _test_handler(
                refuse_senders=refuse_senders,
                refuse_recipients=refuse_recipients,
                fail_messages=fail_messages,
                require_auth=users is not None,
            )
        elif knobs and users is None:
            raise TypeError(
                "refuse_senders, refuse_recipients and fail_messages shape the fixture's own"
                " handler: with handler=..., refuse in your handler"
            )
        if users is not None:
            options["auth"] = dict(users)
        if "config" not in options:
            options["config"] = Config(
                hostname="smtp.test",
                extensions=TEST_EXTENSIONS,
                # a test server on loopback: AUTH without TLS, when asked for
                allow_plaintext_auth=users is not None,
            )
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        server = SyncServer(handler, **options).start()
        test_server = SMTPTestServer(server, handler)
        servers.append(test_server)
        return test_server

    try:
        yield start
    finally:
        for test_server in servers:
            test_server.close()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., SMTPTestServer]) -> SMTPTestServer:
    """An SMTP server on 127.0.0.1 (ephemeral port) collecting every message it accepts."""
    return smtp_server_factory()
