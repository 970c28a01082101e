"""client_key() keeps what it worked out per host in a bounded cache (issue 13): the
keys are those worked out afresh, on the first call and the next ones."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp.adapters.server import _limits
from sansio_smtp.adapters.server._limits import _key_of, client_key

HOSTS = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(
        ["127.0.0.1", "::1", "::ffff:192.0.2.7", "fe80::1%eth0", "2001:db8::1", "localhost"]
    ),
    st.text(max_size=12),
)


@given(hosts=st.lists(HOSTS, max_size=20))
def test_cached_keys_are_the_keys(hosts: list[str]) -> None:
    for host in hosts + hosts:
        assert client_key((host, 25)) == _key_of(host)


def test_the_cache_stays_bounded() -> None:
    for n in range(_limits._KEYS_MAX + 10):
        assert client_key((f"10.0.{n // 256}.{n % 256}", 25)) == f"10.0.{n // 256}.{n % 256}"
    assert len(_limits._KEYS) <= _limits._KEYS_MAX


def test_what_is_not_a_tcp_peer_has_no_key() -> None:
    assert client_key("/run/smtp.sock") is None
    assert client_key(()) is None
    assert client_key(None) is None
