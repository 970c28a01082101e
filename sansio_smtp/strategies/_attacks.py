# Attack strategies: the byte strings a hostile peer sends. Each family targets one rule.
#
# - hostile_lines: text a server may quote in its replies (the 512-octet reply line).
# - smuggling_payloads: end-of-data look-alikes inside DATA (RFC 5321 §4.1.1.4: only
#   <CRLF>.<CRLF> ends it; SMTP smuggling, CVE-2023-51764/51765/51766, CVE-2024-27305).
# - injection_payloads: control characters inside command arguments (RFC 5321 §4.1.2
#   grammar, §2.3.8 bare CR/LF).
# - starttls_injections / starttls_reply_injections: plaintext pipelined behind STARTTLS
#   or its 220 (RFC 3207 §4.2, CVE-2011-0411, CVE-2021-33515, aiosmtpd before 1.4.6).
#
# They are bytes as they go on the wire, so a harness can feed them to any SMTP
# implementation, not only a sansio_smtp Connection.
from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

# Where a server may quote what the peer sent: parameter keywords and values, addresses,
# verbs and arguments (issue 10 item 13: hints quoting them went over 512 octets).
_QUOTING_PREFIXES = [
    b"MAIL FROM:<a@b.example> ",
    b"MAIL FROM:<a@b.example> X=",
    b"MAIL FROM:<a@b.example> SIZE=",
    b"MAIL FROM:<a@b.example> ENVID=",
    b"MAIL FROM:<a@b.example> BODY=",
    b"MAIL FROM:<a@b.example> RET=",
    b"MAIL FROM:<a@b.example> AUTH=",
    b"MAIL FROM:<a@b.example> MT-PRIORITY=",
    b"MAIL FROM:<a@b.example> BY=",
    b"MAIL FROM:<a@b.example> SMTPUTF8=",
    b"MAIL FROM:<a@b.example> SIZE=1 SIZE=",
    b"MAIL FROM:<",
    b"RCPT TO:<c@d.example> NOTIFY=",
    b"RCPT TO:<c@d.example> ORCPT=rfc822;",
    b"RCPT TO:<c@d.example> ",
    b"RCPT TO:<",
    b"STARTTLS ",
    b"HELP ",
    b"NOOP ",
    b"VRFY ",
    b"EHLO ",
    b"LHLO ",
    b"AUTH ",
    b"AUTH PLAIN ",
    b"BDAT ",
    b"",
]
# What the quoted text is made of: controls (escaped to 4 characters each), non-ASCII
# UTF-8 (escaped to 4-6), invalid UTF-8, and plain characters that pass the grammar.
_QUOTED_UNITS = [
    b"\x01",
    b"\x7f",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\xf0\x9f\x98\x80",
    b"\xff",
    b"K",
    b"1",
    b"=",
    b" ",
    b"@",
    b">",
    b"+2B",
    b"\\",
    b"'",
]


@cache
def hostile_lines() -> st.SearchStrategy[bytes]:
    """One command line (with CRLF) that puts long runs of hostile text where a server
    may quote it, up to about the 512-octet command line limit and past it."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        prefix = draw(st.sampled_from(_QUOTING_PREFIXES))
        units = draw(st.lists(st.sampled_from(_QUOTED_UNITS), min_size=1, max_size=3))
        count = draw(st.integers(1, 520))
        body = (b"".join(units) * count)[: draw(st.integers(1, 530))]
        tail = draw(st.sampled_from([b"", b">", b"=1", b" SIZE=1"]))
        return prefix + body + tail + b"\r\n"

    return build()


# ------------------------------------------------------------------------- smuggling

END_OF_DATA = b"\r\n.\r\n"  # RFC 5321 §4.1.1.4: the one and only end of DATA

# End-of-data look-alikes: every bare-CR/bare-LF mix around a lone dot, and CR CR LF
# (which a peer that condenses "\r\r\n" to "\r\n" reads as <CRLF>.<CRLF>).
_FAKE_ENDS = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\n.\r",
    b"\r.\n",
    b"\r\n.\r\r\n",
    b"\r\r\n.\r\r\n",
    b"\n.\r\r\n",
    b"\r\r\n.\n",
    b"\r\n\x00.\r\n",
    b"\r\n.\x00\r\n",
]
# At the very start of DATA the CRLF of the DATA command line is the first half of the
# terminator: these look-alikes need no line ending before the dot.
_FAKE_ENDS_AT_START = [b".\n", b".\r", b".\r\r\n", b".\n\r\n", *_FAKE_ENDS]
_SMUGGLED_MAIL = [
    b"MAIL FROM:<admin@victim.example>",
    b"RCPT TO:<target@victim.example>",
    b"DATA",
    b"From: admin@victim.example\r\nSubject: smuggled\r\n\r\nsmuggled",
    b"RSET",
    b"QUIT",
]
_CONTENT = st.sampled_from(
    [b"Subject: hi\r\n\r\nhello", b"hello", b"a\r\nb", b".leading dot", b"..", b"x" * 50]
)


def _ends_only_at_terminator(content: bytes) -> bool:
    # The first <CRLF>.<CRLF> after the DATA line's CRLF is the appended terminator.
    stream = b"\r\n" + content + END_OF_DATA
    return stream.find(END_OF_DATA) == len(content) + 2


@cache
def smuggling_payloads() -> st.SearchStrategy[bytes]:
    """Message content (what a client sends after DATA's 354, *without* the final
    terminator) that holds an end-of-data look-alike followed by a smuggled transaction
    (MAIL, RCPT, DATA, headers; in CRLF, bare LF or bare CR lines): every bare-CR/LF
    variant of ``<CRLF>.<CRLF>``, ``\\r\\r\\n`` condensing, NUL beside the dot; at the
    very start of DATA and after some content, once or several times.

    The content never holds a real ``<CRLF>.<CRLF>`` (RFC 5321 §4.1.1.4), not even
    together with the DATA line's CRLF before it or the terminator after it: send
    ``payload + END_OF_DATA`` and a correct server sees exactly one message, ending
    there, and no command from inside it."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        parts: list[bytes] = []
        at_start = draw(st.booleans())
        if not at_start:
            parts.append(draw(_CONTENT) + draw(st.sampled_from([b"", b"\r\n"])))
        for i in range(draw(st.integers(1, 3))):
            ends = _FAKE_ENDS_AT_START if at_start and i == 0 else _FAKE_ENDS
            parts.append(draw(st.sampled_from(ends)))
            eol = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
            lines = draw(st.lists(st.sampled_from(_SMUGGLED_MAIL), min_size=1, max_size=4))
            parts.append(eol.join(lines))
        parts.append(draw(st.sampled_from([b"", b"\r\n", b"\n", b"\r", b"trailer"])))
        return b"".join(parts)

    return build().filter(_ends_only_at_terminator)


# ------------------------------------------------------------------------- injection

# Where a server puts an argument: the verb (and fixed text) before it, the rest after.
_ARGUMENT_SLOTS = [
    (b"EHLO client", b".example"),
    (b"HELO client", b".example"),
    (b"MAIL FROM:<a", b"@b.example>"),
    (b"MAIL FROM:<a@b", b".example>"),
    (b"RCPT TO:<c", b"@d.example>"),
    (b'RCPT TO:<"c', b'"@d.example>'),
    (b"MAIL FROM:<a@b.example> SIZE=1", b"0"),
    (b"MAIL FROM:<a@b.example> ENVID=x", b"y"),
    (b"MAIL FROM:<a@b.example> BODY=8BIT", b"MIME"),
    (b"RCPT TO:<c@d.example> NOTIFY=NEVER", b""),
    (b"RCPT TO:<c@d.example> ORCPT=rfc822;c", b"@d.example"),
    (b"VRFY us", b"er"),
    (b"EXPN li", b"st"),
    (b"HELP top", b"ic"),
    (b"NOOP te", b"xt"),
    (b"AUTH PLAIN AHVzZXIAcGVu", b"Y2ls"),
    (b"AUTH LOG", b"IN"),
    (b"BDAT 1", b"0"),
    (b"LHLO client", b".example"),
]
_C0_AND_DEL = [bytes([c]) for c in (*range(0x20), 0x7F) if c not in (0x0D, 0x0A)]
_LINE_BREAKS = [b"\r", b"\n", b"\n\r", b"\r\r\n"]
_INJECTED = [
    b"RCPT TO:<injected@attacker.example>",
    b"DATA",
    b"RSET",
    b"QUIT",
    b"MAIL FROM:<injected@attacker.example>",
]


@cache
def injection_payloads() -> st.SearchStrategy[bytes]:
    """One command line, ending in CRLF, with a control character inside an argument
    (a domain, a path, a parameter value, a VRFY/HELP/NOOP string, an AUTH response, a
    BDAT size): NUL, the other C0 controls, DEL (none of which the grammar of RFC 5321
    §4.1.2 allows), or a bare CR or LF (RFC 5321 §2.3.8) followed by an injected
    command. A server must refuse the line or treat the bare line break as a line end,
    never accept an argument holding a control character."""
    control = st.sampled_from(_C0_AND_DEL).map(lambda c: (c, b""))
    breaks = st.tuples(st.sampled_from(_LINE_BREAKS), st.sampled_from(_INJECTED))
    return st.builds(
        lambda slot, ctl: slot[0] + ctl[0] + ctl[1] + slot[1] + b"\r\n",
        st.sampled_from(_ARGUMENT_SLOTS),
        control | breaks,
    )


# -------------------------------------------------------------------------- STARTTLS

_STARTTLS_LINES = [b"STARTTLS\r\n", b"starttls\r\n", b"StartTLS\r\n"]
_INJECTED_COMMANDS = [
    b"MAIL FROM:<injected@attacker.example>\r\n",
    b"RCPT TO:<injected@attacker.example>\r\n",
    b"EHLO attacker.example\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
    b"AUTH PLAIN AHVzZXIAcGVuY2ls\r\n",
]
_COMMAND_FRAGMENTS = [b"M", b"MAIL FROM:<injected@", b"RSET", b"\r", b"\n", b" ", b"\x00"]


@cache
def starttls_injections() -> st.SearchStrategy[bytes]:
    """What a client sends after EHLO to a server that advertises STARTTLS: the
    STARTTLS line and plaintext pipelined behind it, whole commands or a fragment with
    no line end. RFC 3207 §4.2: a server must discard what came before TLS; taking
    that plaintext as the first commands of the TLS session is command injection
    (CVE-2011-0411). A correct server never carries any of it over."""
    whole = st.lists(st.sampled_from(_INJECTED_COMMANDS), min_size=1, max_size=3).map(b"".join)
    fragment = st.sampled_from(_COMMAND_FRAGMENTS)
    injected = st.one_of(whole, fragment, st.tuples(whole, fragment).map(b"".join))
    return st.builds(lambda line, rest: line + rest, st.sampled_from(_STARTTLS_LINES), injected)


_INJECTED_REPLIES = [b"250 OK\r\n", b"250-mx.example\r\n250 AUTH PLAIN\r\n", b"220 again\r\n"]
_REPLY_FRAGMENTS = [b"2", b"250", b"250 ", b"\r", b"\n"]


@cache
def starttls_reply_injections() -> st.SearchStrategy[bytes]:
    """What a server sends to a client's STARTTLS: a 220 and plaintext replies (or a
    fragment of one) behind it, which a client must not read as the TLS session's
    first replies (RFC 3207 §4.2; the client side of STARTTLS injection)."""
    ready = st.sampled_from([b"220 2.0.0 Ready to start TLS\r\n", b"220 go ahead\r\n"])
    whole = st.lists(st.sampled_from(_INJECTED_REPLIES), min_size=1, max_size=2).map(b"".join)
    injected = whole | st.sampled_from(_REPLY_FRAGMENTS)
    return st.builds(lambda a, b: a + b, ready, injected)
