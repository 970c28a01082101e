# Private package behind the public module ``sansio_smtp.sasl``: SASL mechanisms (RFC 4422)
# as small sans-IO state machines, one module per family.
#
# Rules: bytes in, bytes (or typed steps) out; no I/O, no clock, no randomness. Nonces,
# CRAM-MD5 challenge parts and the SCRAM unknown-user key are constructor arguments;
# only ``_registry`` (the public factory functions) fills in defaults from ``secrets``.
# Import public names from ``sansio_smtp.sasl``, never from here.
