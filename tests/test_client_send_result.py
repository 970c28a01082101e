"""send_result() builds an all-accepted transaction's result without copying; for any
replies it gives what the general rule gives: accepted and refused in recipient order,
a recipient accepted by any transaction not refused, the final reply of each transaction
that got as far as the content."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp._events import Data, EndOfMessage, MailFrom, RcptTo, Reply
from sansio_smtp.adapters.client._results import SendResult
from sansio_smtp.adapters.client._transactions import Outcome, Transaction, send_result

ADDRESSES = ["a@example.org", "b@example.org", "c@example.org"]


def reference(sender: str, keys: list[str], txs: list[Transaction]) -> SendResult:
    accepted: dict[str, Reply] = {}
    refused: dict[str, Reply] = {}
    for tx in txs:
        accepted.update(tx.accepted)
        refused.update(tx.refused)
    return SendResult(
        sender=sender,
        accepted={k: accepted[k] for k in keys if k in accepted},
        refused={k: refused[k] for k in keys if k in refused and k not in accepted},
        data_replies=tuple(
            tx.data_reply
            for tx in txs
            if tx.data_reply is not None and tx.outcome is not Outcome.SENDER_REFUSED
        ),
    )


codes = st.sampled_from([250, 251, 450, 550])


@st.composite
def transactions(draw: st.DrawFn) -> tuple[list[str], list[Transaction]]:
    keys = draw(st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=4))
    txs = []
    for part in draw(st.sampled_from([[keys], [keys[:1], keys[1:]] if len(keys) > 1 else [keys]])):
        tx = Transaction(list(part))
        tx.record(MailFrom(reverse_path="s@example.org"), Reply(code=draw(codes), lines=("m",)))
        for key in part:
            tx.record(RcptTo(forward_path=key), Reply(code=draw(codes), lines=("r",)))
        if draw(st.booleans()):
            tx.record(Data(), Reply(code=draw(st.sampled_from([354, 554])), lines=("d",)))
            if draw(st.booleans()):
                tx.record(EndOfMessage(), Reply(code=draw(codes), lines=("e",)))
        tx.finish()
        txs.append(tx)
    return keys, txs


@given(transactions())
def test_send_result_is_the_general_rule(case: tuple[list[str], list[Transaction]]) -> None:
    keys, txs = case
    expected = reference("s@example.org", keys, txs)
    got = send_result("s@example.org", keys, txs)
    assert got == expected
    assert list(got.accepted) == list(expected.accepted)
    assert list(got.refused) == list(expected.refused)
