"""str() of a Reply or Greeting is its wire form (issue 15): what write_reply sends, one
line per line without the CRLFs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import Config, Greeting, LocalProtocolError, Reply
from sansio_smtp._writers import write_reply

texts = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40)


@given(
    st.sampled_from([211, 214, 220, 221, 250, 251, 354, 421, 450, 451, 452, 500, 550, 554]),
    st.lists(texts, min_size=1, max_size=5),
    st.booleans(),
)
def test_str_is_the_wire_form(code: int, lines: list[str], enhanced: bool) -> None:
    # RFC 5321 §4.2.1: "250-" on every line but the last; RFC 2034 §3: the enhanced code
    # on each line
    esc = f"{code // 100}.1.0" if enhanced and code // 100 in (2, 4, 5) else None
    reply = Reply(code=code, lines=tuple(lines), enhanced=esc)
    try:
        wire = write_reply(reply, Config())
    except LocalProtocolError:  # a line over 512 octets: nothing to compare
        return
    assert str(reply) == wire.decode("utf-8").removesuffix("\r\n").replace("\r\n", "\n")


def test_examples() -> None:
    reply = Reply(code=250, lines=("mx.example.org", "PIPELINING", "SIZE 1000"))
    assert str(reply) == "250-mx.example.org\n250-PIPELINING\n250 SIZE 1000"
    assert str(Reply(code=550, lines="No such user", enhanced="5.1.1")) == "550 5.1.1 No such user"
    assert str(Greeting(lines=("mx.example.org ESMTP", "welcome"))) == (
        "220-mx.example.org ESMTP\n220 welcome"
    )
