"""POSTing purchases: one, or many at a rate; each 202 becomes the client's record of it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from bench.client import Account, Edge, EdgeError
from bench.progress import Progress
from bench.workload import PurchasePlan


@dataclass
class Sent:
    """What came back from some POSTs."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # purchase id -> record
    not_accepted: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: Sent) -> None:
        self.records.update(other.records)
        self.not_accepted.extend(other.not_accepted)


@dataclass
class Sender:
    load: Edge
    customers: list[Account]
    product_ids: list[int]
    progress: Progress
    concurrency: int  # POSTs in flight at most

    async def post(self, plan: PurchasePlan, sent: Sent, phase: str) -> str | None:
        """POST one planned purchase; its id if accepted. A retry carries the same
        Idempotency-Key, so it never buys twice."""
        progress = self.progress
        progress.sent += 1
        try:
            answer = await self.load.as_customer(
                "POST",
                "/api/v1/purchases",
                self.customers[plan.customer],
                json_body=plan.body(self.product_ids),
                headers={"Idempotency-Key": plan.idempotency_key},
            )
        except EdgeError as error:
            progress.lost += 1
            sent.not_accepted.append({"index": plan.index, "phase": phase, "error": str(error)})
            return None
        if answer.status != 202:
            progress.refused += 1
            sent.not_accepted.append(
                {"index": plan.index, "phase": phase, "status": answer.status, "body": answer.body}
            )
            return None
        progress.accepted += 1
        purchase_id = str(answer.body["id"])
        sent.records[purchase_id] = {
            "index": plan.index,
            "phase": phase,
            "customer": plan.customer,
            "sent_at": answer.sent_at,
            "accepted_at": answer.answered_at,
            "attempts": answer.attempts,
            "rejected_on_purpose": plan.rejected_on_purpose,
            "cancel_on_purpose": plan.cancel_on_purpose,
        }
        if plan.cancel_on_purpose:
            await self.cancel(plan, purchase_id, sent)
        return purchase_id

    async def cancel(self, plan: PurchasePlan, purchase_id: str, sent: Sent) -> None:
        """Cancel an accepted purchase at once, as its customer (scenario cancel10). 202:
        the cancel is on its way; 409: the saga was faster (it completed). Both are fine:
        the invariants check the end state."""
        try:
            answer = await self.load.as_customer(
                "POST",
                f"/api/v1/purchases/{purchase_id}/cancel",
                self.customers[plan.customer],
                json_body={},
                headers={"Idempotency-Key": f"{plan.idempotency_key}-cancel"},
            )
        except EdgeError as error:
            sent.records[purchase_id]["cancel"] = f"lost: {error}"
            return
        sent.records[purchase_id]["cancel"] = answer.status

    async def send_all(self, plans: list[PurchasePlan], *, rate: float, phase: str) -> Sent:
        """POST `plans`, at most `concurrency` in flight, and when `rate` > 0 the n-th at
        n/rate seconds from now whatever the answers so far (open loop: a slow stack
        meets the same arrivals, as it would in production)."""
        sent = Sent()
        gate = asyncio.Semaphore(self.concurrency)
        start = time.time()

        async def one(plan: PurchasePlan) -> None:
            async with gate:
                await self.post(plan, sent, phase)

        tasks = []
        for n, plan in enumerate(plans):
            if rate > 0:
                await asyncio.sleep(max(0.0, start + n / rate - time.time()))
            else:
                await asyncio.sleep(0)  # let the started ones run while the rest queue
            tasks.append(asyncio.create_task(one(plan)))
        await asyncio.gather(*tasks)
        return sent
