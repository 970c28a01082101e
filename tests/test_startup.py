"""Start-up (issue 13 T1): what is put off until first use still works, and stays put off.

No timings here: these tests check the lazy paths give the same objects and results as
the eager ones did, and that importing the package does not load what it defers.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sansio_smtp
from sansio_smtp import MailFrom, RcptTo, Reply, _abnf, _address, sasl
from sansio_smtp._address import Address, coerce_reverse_path
from sansio_smtp._status import EnhancedStatusCode
from sansio_smtp._util import LazyPattern


def _loaded_after(code: str) -> set[str]:
    """The sansio_smtp (and a few stdlib) modules loaded by ``code`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(sansio_smtp.__file__).parent.parent,
    ).stdout
    return set(out.split())


def test_import_sansio_smtp_defers_sasl_codes_transcript_and_presentation() -> None:
    loaded = _loaded_after("import sansio_smtp")
    for deferred in (
        "sansio_smtp.sasl",
        "sansio_smtp._sasl._base",
        "sansio_smtp.codes",
        "sansio_smtp._transcript",
        "sansio_smtp._repr",
        "sansio_smtp.adapters",
        "ipaddress",
        "ssl",
        "asyncio",
        "email",
    ):
        assert deferred not in loaded, deferred


def test_import_sasl_loads_no_mechanism_until_one_is_used() -> None:
    loaded = _loaded_after("import sansio_smtp.sasl")
    assert not {m for m in loaded if m.startswith("sansio_smtp._sasl.")}
    loaded = _loaded_after("from sansio_smtp.sasl import client_mechanism")
    assert "sansio_smtp._sasl._registry" in loaded


@pytest.mark.parametrize("name", sasl.__all__)
def test_every_sasl_name_is_the_object_its_module_defines(name: str) -> None:
    value = getattr(sasl, name)
    homes = [
        importlib.import_module(f"sansio_smtp._sasl.{m}")
        for m in ("_base", "_registry", "_endpoint", "_oauth", "_saslprep", "_scram", "_simple")
    ]
    assert any(getattr(home, name, None) is value for home in homes)
    assert name in dir(sasl)


def test_sasl_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        sasl.no_such_mechanism  # noqa: B018
    with pytest.raises(AttributeError):
        sasl.utf8  # noqa: B018  (in _simple, not public)


@given(st.text(alphabet='ab.@-"\\[]:é \x00', max_size=20))
def test_lazy_pattern_matches_as_the_compiled_pattern(text: str) -> None:
    source = r'(?P<local>[a-z.é]+|"[^"]*")@(?P<domain>[a-z-]+(?:\.[a-z-]+)*|\[[^]]*\])\Z'
    lazy = LazyPattern(source)
    compiled = re.compile(source)
    got, want = lazy.match(text), compiled.match(text)
    assert (got and got.groupdict()) == (want and want.groupdict())
    assert lazy.sub("x", text) == compiled.sub("x", text)
    assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in compiled.finditer(text)]


def test_lazy_pattern_compiles_once_then_uses_the_compiled_methods() -> None:
    lazy = LazyPattern(r"a+")
    assert "match" not in vars(lazy)
    assert lazy.fullmatch("aaa")
    assert vars(lazy)["match"].__self__ is vars(lazy)["search"].__self__  # one compile
    with pytest.raises(AttributeError):
        lazy.no_such_method  # noqa: B018


def test_event_defaults_and_converters_keep_their_meaning() -> None:
    # one shared empty Params: equal to a new one, never mutable
    assert MailFrom(reverse_path=None).params == {}
    assert RcptTo(forward_path="a@b.example").params is RcptTo(forward_path="c@d.example").params
    addr = Address.parse("a@b.example")
    assert coerce_reverse_path(addr) is addr
    assert coerce_reverse_path("") is None and coerce_reverse_path("<>") is None
    assert coerce_reverse_path("<a@b.example>") == addr
    # an enhanced code given as text: parsed once, the same value every time
    one = Reply(code=250, lines="OK", enhanced="2.1.5").enhanced
    assert one == EnhancedStatusCode(2, 1, 5)
    assert Reply(code=550, lines="no", enhanced="5.1.1").enhanced == EnhancedStatusCode(5, 1, 1)
    with pytest.raises(ValueError):
        Reply(code=250, lines="OK", enhanced="2.01.5")
    with pytest.raises(ValueError):
        Reply(code=250, lines="OK", enhanced="5.1.1")  # class does not match the code


# The grammar's UTF-8 classes are single negated classes; each must equal the alternation
# of RFC 6531 §3.3 it stands for ("ASCII class / UTF8-non-ascii").
_ALTERNATIONS = {
    _abnf.ATEXT_UTF8: rf"(?:{_abnf.ATEXT}|{_abnf.UTF8_NON_ASCII})",
    _abnf.QTEXT_UTF8: rf"(?:{_abnf.QTEXT}|{_abnf.UTF8_NON_ASCII})",
    _abnf.LET_DIG_UTF8: rf"(?:[A-Za-z0-9]|{_abnf.UTF8_NON_ASCII})",
    _abnf.LDH_UTF8: rf"(?:[A-Za-z0-9-]|{_abnf.UTF8_NON_ASCII})",
    _abnf.ESMTP_VALUE_CHAR_UTF8: rf"(?:[\x21-\x3c\x3e-\x7e]|{_abnf.UTF8_NON_ASCII})",
}
_CODE_POINTS = [*range(0x300), 0xD800, 0xDFFF, 0xFEFF, 0xFFFF, 0x10000, 0x10FFFF]


@pytest.mark.parametrize(("merged", "alternation"), _ALTERNATIONS.items())
def test_utf8_class_is_its_alternation(merged: str, alternation: str) -> None:
    one, two = re.compile(merged), re.compile(alternation)
    for c in map(chr, _CODE_POINTS):
        assert bool(one.fullmatch(c)) == bool(two.fullmatch(c)), hex(ord(c))


@given(st.text(alphabet='ab.-@"\\[]:,1é\x7f\x00_ IPv6', max_size=16))
def test_utf8_mailbox_pattern_is_the_alternation_form(text: str) -> None:
    na = _abnf.UTF8_NON_ASCII
    atext, let_dig = rf"(?:{_abnf.ATEXT}|{na})", rf"(?:[A-Za-z0-9]|{na})"
    sub_domain = rf"{let_dig}(?:(?:[A-Za-z0-9-]|{na})*{let_dig})?"
    domain = rf"{sub_domain}(?:\.{sub_domain})*"
    reference = re.compile(
        rf"(?:@{domain}(?:,@{domain})*:)?"
        rf'(?P<local>{atext}+(?:\.{atext}+)*|"(?:{_abnf.QTEXT}|{_abnf.QUOTED_PAIR}|{na})*")'
        rf"@(?P<domain>{domain}|{_abnf.ADDRESS_LITERAL})\Z"
    )
    got, want = _address._MAILBOX_RE.match(text), reference.match(text)
    assert (got and got.groupdict()) == (want and want.groupdict())


_MAILBOX_TEXT = st.text(alphabet='ab.-@"\\[]:,1é\x7f\x00_ IPv6', max_size=16)


@given(_MAILBOX_TEXT)
def test_simple_mailbox_pattern_agrees_with_the_full_one(text: str) -> None:
    simple = _address._SIMPLE_MAILBOX_RE.match(text)
    if simple is not None:
        full = _address._MAILBOX_RE.match(text)
        assert full is not None and full.groupdict() == simple.groupdict()


@given(st.text(alphabet='ab.-@"\\[]:,1\x7f\x00_ IPv6', max_size=16))
def test_on_ascii_the_utf8_mailbox_pattern_is_the_ascii_grammar(text: str) -> None:
    reference = re.compile(
        rf"(?:{_abnf.ADL}:)?(?P<local>{_abnf.DOT_STRING}|{_abnf.QUOTED_STRING})"
        rf"@(?P<domain>{_abnf.DOMAIN}|{_abnf.ADDRESS_LITERAL})\Z"
    )
    got, want = _address._MAILBOX_RE.match(text), reference.match(text)
    assert (got and got.groupdict()) == (want and want.groupdict())


@pytest.mark.parametrize(
    "text",
    [
        "bob@example.org",
        "a.b@c.example",
        '"john doe"@example.org',
        "@r.example:u@example.org",
        "u@[192.0.2.1]",
        "u@[IPv6:2001:db8::1]",
        "Postmaster",
        "POSTMASTER",
    ],
)
def test_parse_ascii_and_utf8_agree_on_ascii(text: str) -> None:
    assert Address.parse(text, utf8=False) == Address.parse(text, utf8=True)
    with pytest.raises(ValueError):
        Address.parse("é@example.org", utf8=False)


def test_cli_help_needs_no_shutil() -> None:
    # argparse's own formatter imports shutil (and zlib, bz2, lzma) for the terminal width
    code = (
        "import contextlib, io, sys\n"
        "import sansio_smtp.__main__ as m\n"
        "out = io.StringIO()\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(out):\n"
        "    m.main(['send', '--help'])\n"
        "assert '--server' in out.getvalue(), out.getvalue()\n"
    )
    assert "shutil" not in _loaded_after(code)
