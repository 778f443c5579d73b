"""The README's quick start, run exactly as a user types it.

The bash blocks of the README's `## Quick start` section are extracted and run, in
order, in one bash process, with a fresh EMAIL and CATEGORY and the edge's address. The test then
checks what they printed and what they left behind (the shell variables holding the
ids and the token), so the README cannot drift from what the system does.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from typing import Any

from common.settings import REPO_ROOT
from common.testing import new_email, without_django_settings
from common.topology import INFRA
from tests.e2e.conftest import edge, inventory_of, register, steps_of

SECTION = "## Quick start"
LEFT = ("TOKEN", "CATEGORY_ID", "PRODUCT_1", "PRODUCT_2", "PURCHASE_ID")
MARK = "__left__"


def quick_start_blocks() -> list[str]:
    """The ```bash blocks between `## Quick start` and the next `## ` heading."""
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index(f"\n{SECTION}\n")
    end = readme.find("\n## ", start + len(SECTION) + 1)
    section = readme[start : end if end != -1 else None]
    return re.findall(r"^```bash\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


def json_documents(text: str) -> list[dict[str, Any]]:
    """Every JSON object printed from the start of a line (compact or pretty-printed)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    end = 0
    for match in re.finditer(r"^\{", text, flags=re.MULTILINE):
        if match.start() < end:
            continue  # inside the object just read
        try:
            document, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        found.append(document)
    return found


def run_quick_start(email: str, category: str) -> tuple[str, dict[str, str]]:
    """Run the blocks as one script; answer its output and the variables it left."""
    blocks = quick_start_blocks()
    dump = "".join(f'printf "{MARK} %s=%s\\n" {name} "${name}"\n' for name in LEFT)
    script = "set -euo pipefail\n" + "\n".join(blocks) + "\n" + dump
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        env={
            **without_django_settings(),
            "EDGE": INFRA.edge_url,
            "EMAIL": email,
            "CATEGORY": category,
        },
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    left = dict(
        line.removeprefix(f"{MARK} ").split("=", 1)
        for line in result.stdout.splitlines()
        if line.startswith(f"{MARK} ")
    )
    return result.stdout, left


def test_the_readme_has_a_quick_start_of_several_bash_blocks() -> None:
    blocks = quick_start_blocks()
    assert len(blocks) >= 3
    script = "\n".join(blocks)
    for expected in ("auth/register", "make staff", "auth/login", "/api/v1/purchases"):
        assert expected in script


def test_the_quick_start_buys_4_and_5_and_the_saga_completes() -> None:
    # Given a fresh email, when the README's blocks run as a user would run them
    output, left = run_quick_start(new_email("readme"), f"whey {uuid.uuid4().hex[:8]}")

    # then they left a token, a category, two products and a purchase
    assert set(left) == set(LEFT), output
    token = left["TOKEN"]
    product_1, product_2 = int(left["PRODUCT_1"]), int(left["PRODUCT_2"])
    purchase_id = left["PURCHASE_ID"]

    # the token carries the staff role (it created the catalog) and is the buyer's
    me = edge("GET", "/api/v1/account/customer/personal", token=token)
    assert me.status_code == 200, me.text

    # the event stream printed the steps and ended with the final status
    assert "event: state" in output
    assert "event: step" in output
    assert "event: status" in output
    stream_end = output[output.index("event: status") :]
    assert "COMPLETED" in stream_end.splitlines()[1]

    # what was printed: the token pair, the purchase, the order, the payment, the stock
    documents = json_documents(output)
    by_shape = {
        "register": [d for d in documents if "refresh_token" in d],
        "purchase": [d for d in documents if "steps" in d],
        "order": [d for d in documents if "lines" in d],
        "payment": [d for d in documents if "currency_code" in d and "steps" not in d],
        "product": [d for d in documents if "inventory" in d],
    }
    assert all(len(found) >= 1 for found in by_shape.values()), by_shape
    assert by_shape["register"][0]["token_type"].lower() == "bearer"

    amount = 4 * 1390 + 5 * 3780
    purchase = by_shape["purchase"][0]
    assert purchase["id"] == purchase_id
    assert purchase["status"] == "COMPLETED"
    assert purchase["amount"] == amount
    assert [s for s in steps_of(purchase) if s[1] == "SUCCESS"] == [
        ("UPDATE_PRODUCT_INVENTORY", "SUCCESS"),
        ("CREATE_ORDER", "SUCCESS"),
        ("CREATE_PAYMENT", "SUCCESS"),
    ]

    order = by_shape["order"][0]
    assert order["id"] == purchase_id
    assert order["status"] == "CREATED"
    assert order["amount"] == amount
    assert sorted((line["product_id"], line["quantity"]) for line in order["lines"]) == [
        (product_1, 4),
        (product_2, 5),
    ]

    payment = by_shape["payment"][0]
    assert payment["id"] == purchase_id
    assert payment["status"] == "COMPLETED"
    assert (payment["amount"], payment["currency_code"]) == (amount, "VND")

    # and the stock went down by 4 and 5 from the 1000 the README created
    printed = {d["id"]: d["inventory"] for d in by_shape["product"]}
    assert printed == {product_1: 996, product_2: 995}
    assert (inventory_of(product_1), inventory_of(product_2)) == (996, 995)

    # nobody else can read any of it, and nobody anonymous
    stranger = register("stranger")
    for path in (
        f"/api/v1/purchases/{purchase_id}",
        f"/api/v1/purchases/{purchase_id}/events",
        f"/api/v1/orders/{purchase_id}",
        f"/api/v1/payments/{purchase_id}",
    ):
        assert edge("GET", path, token=stranger.token).status_code == 404, path
        assert edge("GET", path).status_code == 401, path
    for path in ("/api/v1/purchases", "/api/v1/orders", "/api/v1/payments"):
        listed = edge("GET", path, token=stranger.token)
        assert listed.status_code == 200, listed.text
        assert purchase_id not in listed.text, path
