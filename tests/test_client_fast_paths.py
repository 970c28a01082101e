"""The client's shortcuts on the per-message path give what the general paths give.

A client's MAIL parameters are checked once per (parameters, extensions, TLS), its LIMITS
read once per extensions, and its MAIL and RCPT lines written once per event (all kept by
identity, as the client engine sends the same events message after message): checked here
against the general code, over any input, asked twice (the second answer is the kept one).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import (
    Config,
    LocalProtocolError,
    MailFrom,
    RcptTo,
    _mailparams,
    _rules,
    _writers,
)
from sansio_smtp._extensions import Extensions
from sansio_smtp._params import Params

_KEYWORDS = ["SIZE", "BODY", "SMTPUTF8", "REQUIRETLS", "RET", "ENVID", "MT-PRIORITY", "X-FOO"]
_VALUES = st.sampled_from(
    [None, "0", "1024", "99999999999", "-1", "8BITMIME", "BINARYMIME", "7BIT", "HDRS", "x", "é"]
)
_PARAMS = st.lists(
    st.tuples(st.sampled_from(_KEYWORDS), _VALUES), max_size=4, unique_by=lambda p: p[0]
)
_EXTENSIONS = st.lists(
    st.sampled_from(
        [
            *("SIZE", "SIZE 1000", "SIZE 0", "8BITMIME", "SMTPUTF8", "DSN", "CHUNKING"),
            *("BINARYMIME", "REQUIRETLS", "MT-PRIORITY", "PIPELINING"),
        ]
    ),
    max_size=6,
    unique_by=lambda line: line.split()[0],
)


def _general(params: Params, ext: Extensions, tls: bool) -> tuple[object, int | None]:
    """What _check_mail computed for a client before its verdicts were kept."""
    refused = _rules.mail_params_refusal(params, extensions=ext, tls=tls) if params else None
    declared = _mailparams.size(params) if params and refused is None else None
    return refused, declared


@given(_PARAMS, _EXTENSIONS, st.booleans())
def test_a_kept_mail_verdict_is_the_general_one(
    pairs: list[tuple[str, str | None]], lines: list[str], tls: bool
) -> None:
    params = Params(pairs)
    ext = Extensions.from_ehlo_lines(["mx.example", *lines])
    expected = _general(params, ext, tls)
    assert _rules._client_mail_params(params, ext, tls) == expected
    assert _rules._client_mail_params(params, ext, tls) == expected  # kept
    # an equal Params object of its own, and the other TLS state, are judged afresh
    assert _rules._client_mail_params(Params(pairs), ext, tls) == expected
    assert _rules._client_mail_params(params, ext, not tls) == _general(params, ext, not tls)


def test_mail_verdicts_are_bounded() -> None:
    ext = Extensions.from_ehlo_lines(["mx.example", "SIZE 1000"])
    for n in range(_rules._MAIL_VERDICTS_MAX * 2):
        _rules._client_mail_params(Params({"SIZE": str(n)}), ext, False)
        assert len(_rules._MAIL_VERDICTS) <= _rules._MAIL_VERDICTS_MAX


_ADDRESSES = st.sampled_from(
    [
        "a@b.example",
        "user.name@mx.example.org",
        "ü@b.example",
        "a@bü.example",
        "x" * 64 + "@" + "d" * 63 + "." + "e" * 60 + ".example",
    ]
)


def _written(event: MailFrom | RcptTo, limit: int, utf8: bool) -> bytes | str:
    try:
        return _writers._write_command(event, limit, utf8)
    except LocalProtocolError as exc:
        return str(exc)


def _kept(event: MailFrom | RcptTo, config: Config, utf8: bool) -> bytes | str:
    try:
        return _writers.write_command(event, config, extensions=Extensions(), utf8_transaction=utf8)
    except LocalProtocolError as exc:
        return str(exc)


@given(
    _ADDRESSES,
    st.booleans(),
    st.lists(st.tuples(st.sampled_from(["SIZE", "SMTPUTF8", "BODY"]), _VALUES), max_size=2),
    st.sampled_from([512, 4096]),
    st.booleans(),
)
def test_a_kept_command_line_is_the_written_one(
    address: str, mail: bool, pairs: list[tuple[str, str | None]], limit: int, utf8: bool
) -> None:
    params = Params(dict(pairs))
    event = (
        MailFrom(reverse_path=address, params=params)
        if mail
        else RcptTo(forward_path=address, params=Params({}))
    )
    config = Config(max_command_line=limit)
    expected = _written(event, limit, utf8)
    assert _kept(event, config, utf8) == expected
    assert _kept(event, config, utf8) == expected  # kept
    assert _kept(event, config, not utf8) == _written(event, limit, not utf8)


def test_kept_command_lines_are_bounded() -> None:
    config = Config()
    for n in range(_writers._WRITTEN_MAX * 2):
        _writers.write_command(
            RcptTo(forward_path=f"r{n}@b.example"),
            config,
            extensions=Extensions(),
            utf8_transaction=False,
        )
        assert len(_writers._WRITTEN) <= _writers._WRITTEN_MAX


_LIMITS_WORDS = st.lists(
    st.sampled_from(["MAILMAX=3", "RCPTMAX=100", "rcptmax=2", "MAILMAX=0", "RCPTMAX=x", "FOO=1"]),
    max_size=4,
)


@given(_LIMITS_WORDS, st.booleans())
def test_kept_limits_are_what_advertised_limit_reads(words: list[str], advertised: bool) -> None:
    lines = ["mx.example", "LIMITS " + " ".join(words)] if advertised and words else ["mx.example"]
    ext = Extensions.from_ehlo_lines(lines)
    expected = (
        _rules.advertised_limit(ext, "MAILMAX"),
        _rules.advertised_limit(ext, "RCPTMAX"),
    )
    assert _rules._client_limits(ext) == expected
    assert _rules._client_limits(ext) == expected  # kept
