"""The ESMTP parameters of MAIL and RCPT: the value types that ``MailFrom`` and ``RcptTo``
properties return, and the builders of canonical parameters.

``MailFrom.body`` is a :class:`Body`, ``MailFrom.ret`` a :class:`Ret`, ``MailFrom.deliver_by``
a :class:`DeliverBy`, ``RcptTo.notify`` a frozenset of :class:`Notify`, ``RcptTo.orcpt`` an
:class:`OriginalRecipient`; ``params`` itself is a :class:`Params`. The builders write the
wire form: ``MailFrom(reverse_path=..., params=mail_params(size=1234, body=Body.EIGHT_BIT_MIME))``.
"""

from ._mailparams import (
    Body,
    DeliverBy,
    Notify,
    OriginalRecipient,
    Ret,
    auth_mail_param,
    dsn_mail_params,
    dsn_rcpt_params,
    mail_params,
    xtext_decode,
    xtext_encode,
)
from ._params import Params

__all__ = [
    "Body",
    "DeliverBy",
    "Notify",
    "OriginalRecipient",
    "Params",
    "Ret",
    "auth_mail_param",
    "dsn_mail_params",
    "dsn_rcpt_params",
    "mail_params",
    "xtext_decode",
    "xtext_encode",
]
