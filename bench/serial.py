"""The latency run: purchases sent one at a time, each after the last one's final state,
so POST->final is a purchase's own time through an idle stack, with no queue."""

from __future__ import annotations

from bench.follow import PurchaseStates
from bench.sending import Sender, Sent
from bench.workload import Workload

PHASE = "one at a time"
# Far beyond the 150 ms aimed at: a purchase not final by then means the stack is stuck,
# and the next ones would wait as long, so the run stops.
FINAL_TIMEOUT_SECONDS = 30.0
# How often to look for the final state: the latency is measured from the purchase's own
# final timestamp, so this adds only a short pause before the next POST.
POLL_SECONDS = 0.02


async def one_at_a_time(sender: Sender, workload: Workload, states: PurchaseStates) -> Sent:
    """`options.one_at_a_time` more purchases, each POSTed when the one before is final."""
    sent = Sent()
    plans = workload.draw(workload.options.one_at_a_time)
    sender.progress.note = PHASE
    for plan in plans:
        purchase_id = await sender.post(plan, sent, PHASE)
        if purchase_id is None:
            continue
        final = await states.wait_final(
            [purchase_id], timeout=FINAL_TIMEOUT_SECONDS, interval=POLL_SECONDS
        )
        if not final:
            print(
                f"  (purchase {purchase_id} not final after {FINAL_TIMEOUT_SECONDS:.0f} s:"
                " the latency run stops)",
                flush=True,
            )
            break
        sender.progress.finished += 1
    sender.progress.note = ""
    return sent
