"""Profile rules that hold across create, PATCH and GraphQL: countries, phones, attribute limits."""

import httpx2 as httpx
import pytest

from app.customers.schemas import MAX_ATTRIBUTES, MAX_ATTRIBUTES_BYTES
from tests.fixtures.api import gql
from tests.fixtures.factories import create_customer, customer_body


def _fields(response: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json().get("errors", [])}


@pytest.mark.parametrize("code", ["AQ", "BV", "GS", "HM", "PN", "TF", "UM", "cn"])
async def test_every_iso_3166_code_is_a_country(client: httpx.AsyncClient, code: str) -> None:
    response = await client.post("/v1/customers", json={"first_name": "A", "country": code})
    assert response.status_code == 201, response.text
    assert response.json()["country"] == code.upper()


@pytest.mark.parametrize("code", ["AC", "TA", "XK", "EU", "UK"])
async def test_codes_outside_iso_3166_are_refused(client: httpx.AsyncClient, code: str) -> None:
    response = await client.post("/v1/customers", json={"first_name": "A", "country": code})
    assert response.status_code == 422
    assert "body.country" in _fields(response)


async def test_an_invalid_phone_is_reported_at_the_phone_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/customers", json=customer_body(phone="12"))
    assert response.status_code == 422
    assert set(_fields(response)) == {"body.phone"}


async def test_patch_reads_a_national_phone_in_the_stored_country(
    client: httpx.AsyncClient,
) -> None:
    created = await create_customer(client, country="CN")
    patched = await client.patch(f"/v1/customers/{created['id']}", json={"phone": "13800138999"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["phone"] == "+8613800138999"
    # A country in the same body wins over the stored one.
    moved = await client.patch(
        f"/v1/customers/{created['id']}", json={"phone": "030 901820", "country": "DE"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["phone"] == "+4930901820"


async def test_patch_national_phone_without_any_country_is_a_field_error(
    client: httpx.AsyncClient,
) -> None:
    created = (await client.post("/v1/customers", json={"first_name": "NoCountry"})).json()
    response = await client.patch(f"/v1/customers/{created['id']}", json={"phone": "13800138999"})
    assert response.status_code == 422
    assert set(_fields(response)) == {"body.phone"}
    unchanged = (await client.get(f"/v1/customers/{created['id']}")).json()
    assert unchanged["phone"] is None
    assert unchanged["version"] == 1


async def test_graphql_update_reads_national_phone_in_stored_country(
    client: httpx.AsyncClient,
) -> None:
    created = await create_customer(client, country="CN")
    mutation = """mutation($id: ID!, $phone: String) {
        updateCustomer(id: $id, input: {phone: $phone}) { customer { phone } } }"""
    body = await gql(client, mutation, {"id": created["id"], "phone": "13800138999"})
    assert body["data"]["updateCustomer"]["customer"]["phone"] == "+8613800138999"
    other = (await client.post("/v1/customers", json={"first_name": "NoCountry"})).json()
    body = await gql(client, mutation, {"id": other["id"], "phone": "13800138999"})
    error = body["errors"][0]["extensions"]
    assert error["code"] == "validation_failed"
    assert [e["field"] for e in error["errors"]] == ["input.phone"]


async def test_attribute_count_limit_holds_on_the_merged_result(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/customers", json={"first_name": "Attrs"})).json()
    url = f"/v1/customers/{created['id']}"
    chunk = MAX_ATTRIBUTES * 2 // 5  # two PATCHes fit, the third goes over
    for start in (0, chunk):
        attrs = {f"a{i}": i for i in range(start, start + chunk)}
        assert (await client.patch(url, json={"attributes": attrs})).status_code == 200
    third = {f"a{i}": i for i in range(2 * chunk, 3 * chunk)}
    response = await client.patch(url, json={"attributes": third})
    assert response.status_code == 422, response.text
    assert "body.attributes" in _fields(response)
    stored = (await client.get(url)).json()["attributes"]
    assert len(stored) == 2 * chunk
    # Removing keys (null) in the same PATCH makes room.
    removing = {f"a{i}": None for i in range(chunk)}
    response = await client.patch(url, json={"attributes": {**removing, **third}})
    assert response.status_code == 200, response.text
    assert len(response.json()["attributes"]) == 2 * chunk


async def test_attribute_total_size_is_capped_on_create_and_patch(
    client: httpx.AsyncClient,
) -> None:
    big = {f"k{i}": "x" * 1900 for i in range(MAX_ATTRIBUTES_BYTES // 1900 + 1)}
    response = await client.post("/v1/customers", json={"first_name": "Big", "attributes": big})
    assert response.status_code == 422
    assert "body.attributes" in _fields(response)
    created = (await client.post("/v1/customers", json={"first_name": "Grows"})).json()
    url = f"/v1/customers/{created['id']}"
    half = dict(list(big.items())[: len(big) // 2])
    rest = dict(list(big.items())[len(big) // 2 :])
    assert (await client.patch(url, json={"attributes": half})).status_code == 200
    response = await client.patch(url, json={"attributes": rest})
    assert response.status_code == 422
    assert len((await client.get(url)).json()["attributes"]) == len(half)
