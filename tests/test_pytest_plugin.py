"""The smtp_server fixture as a user's test suite meets it (run by pytester in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from sansio_smtp import Address

pytest_plugins = ["pytester"]

ROOT = str(Path(__file__).resolve().parent.parent)


def _args() -> list[str]:
    # Installed with its pytest11 entry point, the plugin loads by itself (and pytest
    # refuses to register it twice); otherwise name it.
    installed = any(
        ep.value == "sansio_smtp.pytest_plugin" for ep in entry_points(group="pytest11")
    )
    return ["-q"] if installed else ["-q", "-p", "sansio_smtp.pytest_plugin"]


def test_refusal_knobs_users_and_text_addresses(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 15: what a user tests mail code against: refused recipients and senders, a
    # failed message, AUTH over loopback, recorded addresses that compare to their text
    monkeypatch.setenv("PYTHONPATH", ROOT)
    pytester.makepyfile(
        """
        import smtplib
        import pytest
        from sansio_smtp import Reply
        from sansio_smtp.adapters import MemoryHandler

        MSG = b"Subject: hello\\r\\nFrom: a@b.example\\r\\n\\r\\nhi\\r\\n"

        def test_refuse_recipients(smtp_server_factory):
            server = smtp_server_factory(refuse_recipients=["gone@d.example"])
            with smtplib.SMTP(server.host, server.port, timeout=5) as smtp:
                refused = smtp.sendmail("a@b.example", ["c@d.example", "gone@D.EXAMPLE"], MSG)
            assert refused == {"gone@D.EXAMPLE": (550, b"5.1.1 Mailbox unavailable")}
            (msg,) = server.wait_for(1)
            assert msg.rcpt_tos == ["c@d.example"]
            assert msg.mail_from == "a@b.example"
            assert msg.message["Subject"] == "hello"

        def test_refuse_with_a_reply(smtp_server_factory):
            reply = Reply(code=553, lines="Not here", enhanced="5.1.3")
            server = smtp_server_factory(refuse_senders={"spam@b.example": reply})
            with smtplib.SMTP(server.host, server.port, timeout=5) as smtp:
                with pytest.raises(smtplib.SMTPSenderRefused) as raised:
                    smtp.sendmail("spam@b.example", ["c@d.example"], MSG)
            assert raised.value.smtp_code == 553

        def test_fail_the_second_message(smtp_server_factory):
            server = smtp_server_factory(fail_messages=[2])
            with smtplib.SMTP(server.host, server.port, timeout=5) as smtp:
                smtp.sendmail("a@b.example", ["c@d.example"], MSG)
                with pytest.raises(smtplib.SMTPDataError) as raised:
                    smtp.sendmail("a@b.example", ["c@d.example"], MSG)
                smtp.sendmail("a@b.example", ["c@d.example"], MSG)
            assert raised.value.smtp_code == 451
            assert len(server.wait_for(2)) == 2

        def test_users(smtp_server_factory):
            server = smtp_server_factory(users={"alice": "s3cret"})
            with smtplib.SMTP(server.host, server.port, timeout=5) as smtp:
                with pytest.raises(smtplib.SMTPSenderRefused) as raised:
                    smtp.sendmail("a@b.example", ["c@d.example"], MSG)
                assert raised.value.smtp_code == 530
                smtp.login("alice", "s3cret")
                smtp.sendmail("a@b.example", ["c@d.example"], MSG)
            (msg,) = server.wait_for(1)
            assert msg.authenticated_user == "alice"

        def test_own_handler(smtp_server_factory):
            class Mine(MemoryHandler):
                def rcpt(self, session, event):
                    return Reply(code=550, lines="no", enhanced="5.1.1")

            server = smtp_server_factory(handler=Mine())
            with smtplib.SMTP(server.host, server.port, timeout=5) as smtp:
                with pytest.raises(smtplib.SMTPRecipientsRefused):
                    smtp.sendmail("a@b.example", ["c@d.example"], MSG)
            assert server.messages == []
        """
    )
    result = pytester.runpytest_subprocess(*_args())
    result.assert_outcomes(passed=5)


def test_plugin_import_is_light() -> None:
    # issue 15: registered in every pytest run wherever the package is installed, the
    # plugin imports no adapter (sockets, ssl, asyncio, email) until a fixture is used
    code = (
        "import sys, sansio_smtp.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith('sansio_smtp.adapters')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_address_equals_its_text() -> None:
    # what makes `assert msg.rcpt_tos == ["a@example.net"]` work
    address = Address.parse("a@example.net")
    assert address == "a@example.net"
    assert [address] == ["a@example.net"]
    assert address != "b@example.net"
    assert {address: 1}["a@example.net"] == 1
    assert Address("john doe", "example.net") == '"john doe"@example.net'
    assert address != 42


def test_the_readme_example_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 15: the README's fixture example is one a user can paste
    readme = (Path(ROOT) / "README.md").read_text()
    start = readme.index("Paste this into a test file:")
    block = readme[readme.index("```python\n", start) + len("```python\n") :]
    example = block[: block.index("```")]
    monkeypatch.setenv("PYTHONPATH", ROOT)
    pytester.makepyfile(example)
    result = pytester.runpytest_subprocess(*_args())
    result.assert_outcomes(passed=2)
