# Whole valid dialogues: the client side of a session, as a list of events a client
# Connection may send in order and a server that gives every command its default reply
# (Connection.default_reply) accepts, every reply positive.
#
# Strategy: a greeting command (EHLO, or LHLO for LMTP), then 0..max_transactions
# transactions, each MAIL (parameters legal under the advertised extensions), 1-3 RCPT,
# and its content through DATA or (with CHUNKING) BDAT chunks, or abandoned with RSET;
# NOOP/HELP/VRFY between commands; QUIT at the end, sometimes. STARTTLS and AUTH are left
# out: they need a TLS handshake or credentials the dialogue cannot provide. REQUIRETLS
# and MAIL's AUTH= need TLS or AUTH too, so dialogues() never draws them (see
# DIALOGUE_EXTENSIONS).
from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

from .. import (
    Bdat,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Extensions,
    Help,
    Lhlo,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    Rset,
    Vrfy,
)
from ._commands import bodies, chunkings, draw_mail_from, draw_rcpt_to, split, string_args
from ._values import KNOWN_EXTENSIONS, domains

#: The extensions dialogues() draws from: every known one but STARTTLS, AUTH and
#: REQUIRETLS (they need TLS or credentials).
DIALOGUE_EXTENSIONS: tuple[str, ...] = tuple(
    k for k in KNOWN_EXTENSIONS if k not in ("STARTTLS", "AUTH", "REQUIRETLS")
)

_CHATTER = st.one_of(
    st.builds(Noop, text=st.none() | string_args()),
    st.builds(Help, topic=st.none() | string_args()),
    st.builds(Vrfy, text=string_args()),
)


def _eight_bit(mail: MailFrom) -> bool:
    # RFC 6152 §3 / RFC 6531 §3.4: 8-bit content needs BODY=8BITMIME or SMTPUTF8
    body = mail.params.get("BODY")
    return mail.smtputf8 or (body is not None and body.upper() == "8BITMIME")


@cache
def dialogues(
    ext: Extensions | None = None, lmtp: bool = False, max_transactions: int = 3
) -> st.SearchStrategy[list[Event]]:
    """Whole valid client dialogues, for a server configured with
    ``Config(extensions=ext, lmtp=lmtp)``: EHLO (LHLO when ``lmtp``), then up to
    ``max_transactions`` transactions - MAIL with parameters legal under ``ext``, 1-3
    RCPT, the content by DATA + MessageData + EndOfMessage or, with CHUNKING, by BDAT
    chunks each followed by its MessageData (RFC 3030 §2), or RSET instead - with
    NOOP/HELP/VRFY in between, and sometimes QUIT at the end.

    A client Connection can send the events in order, one command at a time, and a
    server that answers each with ``default_reply`` accepts them all (no
    InvalidCommand, no InvalidMessage). ``ext`` must not hold STARTTLS, AUTH or
    REQUIRETLS (see DIALOGUE_EXTENSIONS); ``None`` means no extensions."""
    e = ext if ext is not None else Extensions()
    for name in ("STARTTLS", "AUTH", "REQUIRETLS"):
        if name in e:
            raise ValueError(f"dialogues() cannot use {name}: it needs TLS or credentials")
    hello = Lhlo if lmtp else Ehlo

    @st.composite
    def build(draw: st.DrawFn) -> list[Event]:
        events: list[Event] = [hello(domain=draw(domains()))]
        for _ in range(draw(st.integers(0, max_transactions))):
            events += draw(st.lists(_CHATTER, max_size=1))
            mail = draw_mail_from(draw, e)
            events.append(mail)
            utf8 = mail.smtputf8
            for _ in range(draw(st.integers(1, 3))):
                events.append(draw_rcpt_to(draw, e, utf8))
                events += draw(st.lists(_CHATTER, max_size=1))
            how = draw(st.sampled_from(["data", "bdat", "rset"]))
            body = draw(bodies(eight_bit=_eight_bit(mail)))
            if how == "bdat" and "CHUNKING" in e:
                pieces = split(body, draw(chunkings(max_size=200)))
                keep_last: bool = bool(pieces) and draw(st.booleans())
                last = pieces.pop() if keep_last else b""
                for piece in pieces:
                    events += [Bdat(size=len(piece)), MessageData(data=piece)]
                events.append(Bdat(size=len(last), last=True))
                if last:
                    events.append(MessageData(data=last))
            elif how == "rset":
                events.append(Rset())
            else:
                events += [Data(), MessageData(data=body), EndOfMessage()]
        if draw(st.booleans()):
            events.append(Quit())
        return events

    return build()
