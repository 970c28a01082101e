# MessageEngine: the client engine's choices for one message, made before anything of it
# is written (ClientEngine, _engine, sends it): which MAIL parameters to declare
# (SMTPUTF8 or A-labels, BODY, SIZE), DATA or BDAT, the MAIL and RCPT events (kept for
# the next message like it), and whether the server can take what is declared, which is
# the core's rule: asked by Connection.check (_admit) when the MAIL's own send() cannot
# be the judge. What the server offers is read once per EHLO reply (_Capabilities).
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, overload

from ..._events import MailFrom, RcptTo
from ..._extensions import Extensions
from ..._lines import has_bare_line_ending, normalize_line_endings, scan_line_lengths
from ..._params import Params
from ..._rules import advertised_limit, validate_rcpt_params
from ..._state import State
from ...config import DEFAULT_MAX_DATA_LINE
from ._errors import SMTPError, SMTPNotSupportedError, SMTPServerDisconnected
from ._message import a_label_address, header_is_ascii
from ._options import ClientOptions
from ._session import SessionEngine

__all__ = ["MessageEngine"]

_EVENT_CACHE: Final = 512  # MAIL/RCPT events kept for reuse
_NO_PARAMS: Final = Params()
_NO_KEYWORDS: Final[frozenset[str]] = frozenset()
_NO_SESSION: Final = frozenset({State.CONNECTED, State.REJECTED})  # no EHLO/HELO accepted
#: Reply codes of a core refusal that mean the server does not offer what a message
#: needs: 555 (a MAIL parameter not recognized or not implemented, RFC 5321 §4.1.1.11)
#: and 552 (over the SIZE limit, RFC 1870 §6.1).
_NOT_SUPPORTED: Final = frozenset({552, 555})
_Verdict = tuple[str, tuple[tuple[str, str | None], ...]]  # sender, parameters declared


class _Capabilities:
    """What the engine chooses from the server's EHLO reply, worked out once per reply:
    PIPELINING or lock-step, BDAT or DATA, which optional parameters to declare, how to
    split recipients."""

    __slots__ = (
        "chunking",
        "eightbit",
        "extensions",
        "pipelining",
        "rcptmax",
        "size",
        "smtputf8",
    )

    def __init__(self, ext: Extensions, use_chunking: bool, use_pipelining: bool = True) -> None:
        self.extensions = ext
        self.pipelining = use_pipelining and "PIPELINING" in ext  # RFC 2920
        self.chunking = use_chunking and "CHUNKING" in ext  # RFC 3030 §2
        self.eightbit = "8BITMIME" in ext  # RFC 6152
        self.size = "SIZE" in ext  # RFC 1870
        self.smtputf8 = "SMTPUTF8" in ext  # RFC 6531
        self.rcptmax = advertised_limit(ext, "RCPTMAX")  # RFC 9422 §4.2, the core's reading


class MessageEngine(SessionEngine):
    """The session (SessionEngine) and the choices for each message; the base of
    ClientEngine. One per connection."""

    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._caps: _Capabilities | None = None
        self._events: dict[tuple[type, str, Params], MailFrom | RcptTo] = {}
        self._mails: dict[tuple[str, tuple[tuple[str, str | None], ...], Params], MailFrom] = {}
        self._rcpts: dict[tuple[tuple[str, ...], Params], tuple[RcptTo, ...]] = {}
        # why the last message prepared could not go in ASCII to a server without
        # SMTPUTF8 (RFC 6531 §3.2), for the error when the core refuses its SMTPUTF8
        self._no_ascii_form: str | None = None

    def prepare(
        self,
        sender: str,
        recipients: Sequence[str],
        content: bytes,
        mail_params: Mapping[str, str | None] | None,
        rcpt_params: Mapping[str, str | None] | None,
        *,
        international: bool = False,
        admit: bool = True,
        checked: bool = False,  # the caller ran _check_can_send() already
        admitted: set[_Verdict] | None = None,
    ) -> tuple[MailFrom, list[RcptTo], bytes, bool, dict[str, str | None]]:
        """Choose the parameters and the transfer for a message (nothing is sent):
        declare SMTPUTF8 for a non-ASCII address (RFC 6531 §3.4) when the server offers
        it, else send its domain as A-labels (RFC 6531 §3.2), BODY=8BITMIME for 8-bit
        content (RFC 6152) or BINARYMIME for NULs and over-long lines (RFC 3030 §3), SIZE
        (RFC 1870); BDAT when CHUNKING is offered. Whether the server can take what is
        declared is the core's rule: with ``admit`` it is asked now (``_admit``), which
        needs the session at rest (State.READY: ``settle()``). Returns (MAIL, RCPTs,
        content, use BDAT, the parameters declared). Raises SMTPNotSupportedError,
        ValueError for bad addresses."""
        if not checked:
            self._check_can_send(recipients)
        conn = self.conn
        caps = self._capabilities()
        user = _NO_PARAMS if not mail_params else Params(mail_params)
        # the keywords the caller gave (Params keeps them upper-case), asked below as a set
        given = frozenset(user) if mail_params else _NO_KEYWORDS
        auto: dict[str, str | None] = {}
        utf8 = international or not sender.isascii() or not all(map(str.isascii, recipients))
        self._no_ascii_form = None
        if utf8 and not caps.smtputf8 and "SMTPUTF8" not in given:
            # RFC 6531 §3.2: no U-label and no RFC 6532 header section to a server without
            # SMTPUTF8; the domains may go as A-labels (RFC 5890). When some address has no
            # ASCII form, SMTPUTF8 is declared as before and the core refuses it (555);
            # the reason goes with the SMTPNotSupportedError (_admit)
            try:
                if international and not header_is_ascii(content):
                    raise UnicodeError(
                        "the message's header section is UTF-8 (RFC 6532: non-ASCII"
                        " addresses in its fields)"
                    )
                ascii_sender = a_label_address(sender)
                ascii_recipients = [a_label_address(r) for r in recipients]
            except UnicodeError as exc:
                self._no_ascii_form = str(exc)
            else:
                sender, recipients, utf8 = ascii_sender, ascii_recipients, False
        if utf8 and "SMTPUTF8" not in given:
            auto["SMTPUTF8"] = None
        data = content
        binary = b"\0" in content
        if not binary and has_bare_line_ending(content):
            data = normalize_line_endings(content)  # RFC 5321 §2.3.8, as the core does
        if not binary:
            binary = scan_line_lengths(data, 0, DEFAULT_MAX_DATA_LINE) < 0
        body = user.get("BODY") if given else None
        if binary:
            data = content  # BINARYMIME: the octets exactly as given
            if body is None:
                auto["BODY"] = "BINARYMIME"
        else:
            if data and not data.endswith(b"\r\n"):
                data += b"\r\n"  # what DATA would add (RFC 5321 §4.1.1.4); same for BDAT
            if body is None and not data.isascii():
                # SMTPUTF8 alone lets 8-bit content go (RFC 6531 §3.4); else BODY=8BITMIME
                if caps.eightbit or not utf8:
                    auto["BODY"] = "8BITMIME"
            elif body is not None and body.upper() == "7BIT" and not data.isascii():
                raise SMTPNotSupportedError("BODY=7BIT given for 8-bit content (RFC 6152 §3)")
        if caps.size and "SIZE" not in given:
            auto["SIZE"] = str(len(data))
        if auto and admit:
            self._admit(sender, auto, admitted)
        binary = binary or (body or "").upper() == "BINARYMIME"
        if binary and not self.options.chunking:  # the server's side is the core's rule
            raise SMTPNotSupportedError("BODY=BINARYMIME needs CHUNKING (RFC 3030 §3)")
        limit = conn.size_limit if "SIZE" in given else None
        if limit is not None and len(data) > limit:
            # The core refuses content over the limit as it goes (RFC 1870 §6.1), after
            # the MAIL; a SIZE the caller declared does not say how big it is.
            raise SMTPNotSupportedError(
                f"the message ({len(data)} octets) is over the server's SIZE limit of"
                f" {limit} (RFC 1870 §6.1)"
            )
        mail = self._mail_event(sender, auto, user)
        rparams = _NO_PARAMS if not rcpt_params else Params(rcpt_params)
        if rcpt_params:
            validate_rcpt_params(rparams, extensions=conn.extensions)
        # the RCPTs of the last messages, by their recipients: one lookup for the list
        key = (tuple(recipients), rparams)
        rcpts = self._rcpts.get(key)
        if rcpts is None:
            if len(self._rcpts) >= _EVENT_CACHE:
                self._rcpts.clear()
            rcpts = self._rcpts[key] = tuple(self._event(RcptTo, r, rparams) for r in recipients)
        return mail, list(rcpts), data, caps.chunking, auto

    def _mail_event(self, sender: str, auto: dict[str, str | None], user: Params) -> MailFrom:
        """The MAIL with the engine's parameters (``auto``) then the caller's, kept by
        what it is made of: a message like the last builds no Params and no event."""
        key = (sender, tuple(auto.items()), user)
        mail = self._mails.get(key)
        if mail is None:
            if len(self._mails) >= _EVENT_CACHE:
                self._mails.clear()
            params = Params({**auto, **dict(user)}) if auto else user
            mail = self._mails[key] = self._event(MailFrom, sender, params)
        return mail

    def _check_can_send(self, recipients: Sequence[str]) -> None:
        if not self.usable:
            raise SMTPServerDisconnected("the session is not usable (closed or broken)")
        if self.conn.state in _NO_SESSION:
            raise SMTPError("no session: the server did not accept our EHLO/HELO")
        if not recipients:
            raise ValueError("no recipients")

    def _admit(
        self, sender: str, declared: dict[str, str | None], admitted: set[_Verdict] | None = None
    ) -> None:
        """Ask the core whether a MAIL with the parameters the engine ``declared`` may be
        sent (what the server advertised: SMTPUTF8, 8BITMIME, BINARYMIME with CHUNKING,
        the SIZE limit); raise SMTPNotSupportedError when the server does not offer what
        they need (555, RFC 5321 §4.1.1.11) or the message is too big (552, RFC 1870
        §6.1). Other refusals (the caller's own parameters, LIMITS MAILMAX) come from
        ``Connection.send`` as they always did. ``admitted``: what was admitted before at
        the same point of the session (a batch's messages, all prepared before any is
        sent), which the core would answer the same way again."""
        key = (sender, tuple(declared.items()))
        if admitted is not None and key in admitted:
            return
        error = self.conn.check(self._event(MailFrom, sender, Params(declared)))
        hint = error.reply_hint if error is not None else None
        if hint is not None and hint.code in _NOT_SUPPORTED:
            why = self._no_ascii_form if "SMTPUTF8" in declared else None
            note = f"; {why}" if why else ""
            raise SMTPNotSupportedError(
                f"the server cannot take this message: {error}{note}"
            ) from error
        if admitted is not None:
            admitted.add(key)

    @overload
    def _event(self, kind: type[MailFrom], address: str, params: Params) -> MailFrom: ...
    @overload
    def _event(self, kind: type[RcptTo], address: str, params: Params) -> RcptTo: ...
    def _event(
        self, kind: type[MailFrom] | type[RcptTo], address: str, params: Params
    ) -> MailFrom | RcptTo:
        """MAIL/RCPT for ``address``: events are immutable, so the parsed ones are kept
        (bounded) for the next message to the same addresses."""
        key = (kind, address, params)
        event = self._events.get(key)
        if event is None:
            if len(self._events) >= _EVENT_CACHE:
                self._events.clear()
            if kind is MailFrom:
                event = MailFrom(reverse_path=address, params=params)
            else:
                event = RcptTo(forward_path=address, params=params)
            self._events[key] = event
        return event

    def _capabilities(self) -> _Capabilities:
        ext = self.conn.extensions
        caps = self._caps
        if caps is None or caps.extensions is not ext:
            opts = self.options
            caps = self._caps = _Capabilities(ext, opts.chunking, opts.pipelining)
        return caps
