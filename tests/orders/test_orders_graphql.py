"""GraphQL: the Order node, the list, Customer.orders and the createOrder / refundOrder mutations,
over the same services as REST."""

import httpx2 as httpx

from tests.fixtures.api import count_statements, error_codes, gql
from tests.fixtures.factories import (
    KeyFactory,
    bearer,
    camel,
    create_customer,
    create_order,
    money,
    order_body,
)
from tests.orders.helpers import events_of

FIELDS = """id orderId customerId status channel externalId refundState version
  total { amount currency } refunded { amount }
  items { line sku quantity refundedQuantity unitPrice { amount currency } }"""

CREATE = f"""
mutation($input: OrderCreateInput!, $key: String) {{
  createOrder(input: $input, idempotencyKey: $key) {{ replayed order {{ {FIELDS} }} }}
}}"""
REFUND = f"""
mutation($id: ID!, $input: RefundCreateInput!, $key: String) {{
  refundOrder(id: $id, input: $input, idempotencyKey: $key) {{
    replayed refund {{ amount {{ amount }} items {{ line quantity }} }} order {{ {FIELDS} }}
  }}
}}"""


def order_input(customer_id: str, **overrides: object) -> dict[str, object]:
    body = order_body(customer_id, **overrides)
    converted: dict[str, object] = {}
    for key, value in body.items():
        if key == "items":
            value = [{camel(k): v for k, v in item.items()} for item in value]
        elif key in ("status", "channel"):
            value = str(value).upper()
        converted[camel(key)] = value
    return converted


async def test_create_read_and_refund(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    variables = {"input": order_input(customer["id"]), "key": "order-1"}
    body = await gql(client, CREATE, variables)
    assert "errors" not in body, body
    created = body["data"]["createOrder"]
    assert created["replayed"] is False
    node = created["order"]
    assert node["total"] == money("119.00")
    assert node["status"] == "PAID"
    assert node["refundState"] == "NONE"
    assert [i["unitPrice"]["amount"] for i in node["items"]] == ["49.50", "20.00"]
    again = await gql(client, CREATE, variables)
    assert again["data"]["createOrder"] == {"replayed": True, "order": node}
    assert len(await events_of("order.created")) == 1

    fetched = await gql(
        client,
        f"query($id: ID!) {{ order(id: $id) {{ {FIELDS} }} "
        "node(id: $id) { ... on Order { externalId } } }",
        {"id": node["id"]},
    )
    assert fetched["data"]["order"] == node
    assert fetched["data"]["node"] == {"externalId": node["externalId"]}
    by_raw = await gql(
        client, "query($id: ID!) { order(id: $id) { orderId } }", {"id": node["orderId"]}
    )
    assert by_raw["data"]["order"] == {"orderId": node["orderId"]}

    refund_vars = {"id": node["id"], "input": {"items": [{"line": 1, "quantity": 2}]}, "key": "r1"}
    refunded = await gql(client, REFUND, refund_vars)
    assert "errors" not in refunded, refunded
    payload = refunded["data"]["refundOrder"]
    assert payload["refund"] == {
        "amount": {"amount": "99.00"},
        "items": [{"line": 1, "quantity": 2}],
    }
    assert payload["order"]["refunded"] == {"amount": "99.00"}
    assert payload["order"]["refundState"] == "PARTIAL"
    assert payload["order"]["items"][0]["refundedQuantity"] == 2
    replay = await gql(client, REFUND, refund_vars)
    assert replay["data"]["refundOrder"]["replayed"] is True
    assert len(await events_of("order.refunded")) == 1
    over = await gql(client, REFUND, {"id": node["id"], "input": {"amount": money("20.01")}})
    assert error_codes(over) == ["refund_exceeds_remaining"]


async def test_lists_and_errors(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    a = await create_order(client, customer["id"], occurred_at="2026-01-01T00:00:00Z")
    await create_order(client, customer["id"], occurred_at="2026-02-01T00:00:00Z")
    listed = await gql(
        client,
        """query($f: OrderFilter) { orders(first: 1, filter: $f, sort: occurred_at) {
             edges { cursor node { orderId } } pageInfo { hasNextPage } } }""",
        {"f": {"customerId": customer["id"], "sku": "TEA-01"}},
    )
    assert "errors" not in listed, listed
    page = listed["data"]["orders"]
    assert [e["node"]["orderId"] for e in page["edges"]] == [a["id"]]
    assert page["pageInfo"]["hasNextPage"] is True
    missing = await gql(
        client, CREATE, {"input": order_input("01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f")}
    )
    assert error_codes(missing) == ["customer_not_found"]
    mismatch = await gql(client, CREATE, {"input": order_input(customer["id"], total=money("1"))})
    assert error_codes(mismatch) == ["total_mismatch"]
    invalid = await gql(
        client, CREATE, {"input": order_input(customer["id"], total=money("1.001"))}
    )
    assert error_codes(invalid) == ["validation_failed"]


async def test_customer_orders_in_one_statement(client: httpx.AsyncClient) -> None:
    expected: dict[str, list[str]] = {}
    for _ in range(4):
        customer = await create_customer(client)
        made = [
            await create_order(client, customer["id"], occurred_at=f"2026-0{m}-01T00:00:00Z")
            for m in (1, 2, 3)
        ]
        expected[customer["id"]] = [o["id"] for o in reversed(made)][:2]
    query = """{ customers(first: 10) { edges { node { customerId
        orders(first: 2) { edges { cursor node { orderId total { amount } } }
                           pageInfo { hasNextPage } } } } } }"""
    with count_statements() as statements:
        body = await gql(client, query)
    assert "errors" not in body, body
    orders_statements = [s for s in statements if "order_items" in s]
    assert len(orders_statements) == 1
    seen = {
        e["node"]["customerId"]: [o["node"]["orderId"] for o in e["node"]["orders"]["edges"]]
        for e in body["data"]["customers"]["edges"]
    }
    assert seen == expected
    node = body["data"]["customers"]["edges"][0]["node"]
    assert node["orders"]["pageInfo"]["hasNextPage"] is True
    after = node["orders"]["edges"][-1]["cursor"]
    rest = await gql(
        client,
        """query($id: ID!, $after: String) { customer(id: $id) {
             orders(first: 5, after: $after) { edges { node { orderId } } } } }""",
        {"id": node["customerId"], "after": after},
    )
    assert len(rest["data"]["customer"]["orders"]["edges"]) == 1


async def test_scopes(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    customer = await create_customer(client)
    order = await create_order(client, customer["id"])
    reader = bearer(await make_key("orders:read"))
    read = await gql(
        client, "query($id: ID!) { order(id: $id) { orderId } }", {"id": order["id"]}, reader
    )
    assert read["data"]["order"] == {"orderId": order["id"]}
    write = await gql(client, CREATE, {"input": order_input(customer["id"])}, reader)
    assert error_codes(write) == ["missing_scope"]
    refund = await gql(client, REFUND, {"id": order["id"], "input": {"amount": money("1")}}, reader)
    assert error_codes(refund) == ["missing_scope"]
    nobody = bearer(await make_key("customers:read"))
    denied = await gql(
        client, "query($id: ID!) { order(id: $id) { orderId } }", {"id": order["id"]}, nobody
    )
    assert error_codes(denied) == ["missing_scope"]
