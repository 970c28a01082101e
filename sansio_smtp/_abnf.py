# The grammar of RFC 5321 §4.1.2 (with the UTF-8 extensions of RFC 6531 §3.3) as commented
# regular-expression sources. Only grammar lives here: nothing is parsed in this module, the
# readers and writers compile and apply these patterns once per direction.
#
# Patterns are str patterns: command lines are decoded (ASCII, or UTF-8 once SMTPUTF8 is in
# effect) before they are matched.
from __future__ import annotations

import re

# RFC 6531 §3.3: UTF8-non-ascii extends atext, qtextSMTP and sub-domain once SMTPUTF8 is
# in effect. We match any non-ASCII code point and leave encoding to the decoder.
UTF8_NON_ASCII = r"[^\x00-\x7f]"
# The UTF-8 forms below write "an ASCII class or UTF8-non-ascii" as one negated class:
# every non-ASCII code point, and of ASCII what the ASCII class allows. One class matches
# faster than an alternation of two (addresses are parsed on every MAIL and RCPT) and
# compiles faster than a range up to U+10FFFF. tests/test_startup.py checks each against
# its alternation.
ATEXT_UTF8 = r"[^\x00-\x20\x7f\"(),.:;<>@\[\\\]]"  # atext / UTF8-non-ascii
QTEXT_UTF8 = r'[^\x00-\x1f"\\\x7f]'  # qtextSMTP / UTF8-non-ascii
LET_DIG_UTF8 = r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]"  # ALPHA / DIGIT / UTF8-non-ascii
LDH_UTF8 = r"[^\x00-\x2c\x2e\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]"  # the same and "-"

# RFC 5322 §3.2.3 atext, used by RFC 5321 Atom.
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
# Atom = 1*atext ; Dot-string = Atom *("." Atom)
DOT_STRING = rf"{ATEXT}+(?:\.{ATEXT}+)*"
DOT_STRING_UTF8 = rf"{ATEXT_UTF8}+(?:\.{ATEXT_UTF8}+)*"
# qtextSMTP = %d32-33 / %d35-91 / %d93-126 ; quoted-pairSMTP = %d92 %d32-126
QTEXT = r"[\x20\x21\x23-\x5b\x5d-\x7e]"
QUOTED_PAIR = r"\\[\x20-\x7e]"
QUOTED_STRING = rf'"(?:{QTEXT}|{QUOTED_PAIR})*"'
QUOTED_STRING_UTF8 = rf'"(?:{QTEXT_UTF8}|{QUOTED_PAIR})*"'

# Let-dig = ALPHA / DIGIT ; Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig
# sub-domain = Let-dig [Ldh-str] ; Domain = sub-domain *("." sub-domain)
SUB_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
SUB_DOMAIN_UTF8 = rf"{LET_DIG_UTF8}(?:{LDH_UTF8}*{LET_DIG_UTF8})?"
DOMAIN = rf"{SUB_DOMAIN}(?:\.{SUB_DOMAIN})*"
DOMAIN_UTF8 = rf"{SUB_DOMAIN_UTF8}(?:\.{SUB_DOMAIN_UTF8})*"

# address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
#                         General-address-literal ) "]"
# The contents are checked with the ipaddress module after matching this outline;
# General-address-literal = Standardized-tag ":" 1*dcontent, dcontent = %d33-90 / %d94-126
SNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4_LITERAL = rf"{SNUM}(?:\.{SNUM}){{3}}"
IPV6_LITERAL = r"[Ii][Pp][Vv]6:[0-9A-Fa-f:.]+"
GENERAL_LITERAL = r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+"
ADDRESS_LITERAL = rf"\[(?:{IPV4_LITERAL}|{IPV6_LITERAL}|{GENERAL_LITERAL})\]"

# At-domain = "@" Domain ; A-d-l = At-domain *( "," At-domain )   (source route, §4.1.2)
# RFC 5321 Appendix C: servers must accept source routes and SHOULD ignore them.
ADL = rf"@{DOMAIN}(?:,@{DOMAIN})*"
ADL_UTF8 = rf"@{DOMAIN_UTF8}(?:,@{DOMAIN_UTF8})*"

# esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
ESMTP_KEYWORD = r"[A-Za-z0-9][A-Za-z0-9-]*"
# esmtp-value = 1*(%d33-60 / %d62-126)   ; any CHAR excluding "=", SP, and control characters
# RFC 6531 §3.3 adds UTF8-non-ascii.
ESMTP_VALUE = r"[\x21-\x3c\x3e-\x7e]+"
# The same as one negated class (see ATEXT_UTF8): esmtp-value characters / UTF8-non-ascii.
ESMTP_VALUE_CHAR_UTF8 = r"[^\x00-\x20=\x7f]"
ESMTP_VALUE_UTF8 = rf"{ESMTP_VALUE_CHAR_UTF8}+"

# ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") ; ehlo-param = 1*(%d33-126)
EHLO_KEYWORD = ESMTP_KEYWORD
EHLO_PARAM = r"[\x21-\x7e]+"

# A printable token with no spaces or controls: what we accept as the argument of HELO and
# EHLO. RFC 5321 asks for a Domain or address-literal, but §4.1.4 says servers MUST NOT
# refuse a session over the identity claimed, and real clients send hostnames with "_".
TOKEN = r"[^\x00-\x20\x7f]+"

# String = Atom / Quoted-string (used by VRFY, EXPN, HELP, NOOP). We accept any run of
# printable characters and inner spaces, which is what servers see in practice; leading
# and trailing spaces are not part of the argument (a server strips them).
STRING = r"[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?"

# Control characters (C0 and DEL): never allowed in a command or reply line we write.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
