"""Record kinds: validation, normalisation (E.164 phones, lower-case emails), the content hash
and parent links, as pure functions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.records import (
    SPECS,
    Booking,
    FieldError,
    Kind,
    Membership,
    Owner,
    Property,
    content_hash,
    normalise,
    normalise_phone,
    parent_of,
    split_name,
    unstorable,
)


def test_numeric_website_ids_are_kept_as_text_and_booleans_are_not_ids() -> None:
    assert Property.model_validate({"propertyId": 123}).propertyId == "123"
    with pytest.raises(ValidationError):
        Property.model_validate({"propertyId": True})
    with pytest.raises(ValidationError):
        Owner.model_validate({"userId": "  "})  # stripped to nothing


def test_unknown_fields_are_kept_and_hashed_with_the_rest() -> None:
    owner = Owner.model_validate({"userId": "u1", "favouriteColour": "teal"})
    dumped = owner.model_dump(mode="json", exclude_unset=True)
    assert dumped == {"userId": "u1", "favouriteColour": "teal"}
    assert content_hash(dumped) != content_hash({"userId": "u1"})


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), "a\x00b", {"k": ["x\x00"]}, {"bad\x00key": 1}],
)
def test_values_no_database_can_store_are_named(value: object) -> None:
    assert unstorable(value) is not None
    with pytest.raises(ValidationError):
        Owner.model_validate({"userId": "u1", "customFields": {"v": value}})


def test_normalise_lower_cases_emails_makes_phones_e164_and_drops_empties() -> None:
    spec = SPECS[Kind.enquiry]
    data = {
        "enquiryId": "e1",
        "guestEmail": " Gus@Example.COM ",
        "guestPhone": "07700 900123",
        "subject": "",
        "message": None,
    }
    assert normalise(spec, data, "GB") == {
        "enquiryId": "e1",
        "guestEmail": "gus@example.com",
        "guestPhone": "+447700900123",
    }


def test_a_phone_in_another_region_needs_its_country_code() -> None:
    assert normalise_phone("+1 202 555 0143", "GB") == "+12025550143"
    assert normalise_phone("(202) 555-0143", "US") == "+12025550143"
    with pytest.raises(FieldError) as refused:
        normalise(SPECS[Kind.owner], {"userId": "u1", "phone": "call me"}, "GB")
    assert refused.value.field == "phone"


def test_the_content_hash_ignores_key_order_and_follows_every_value() -> None:
    one = {"userId": "u1", "name": "Ann", "email": "a@b.co"}
    assert content_hash(one) == content_hash(dict(reversed(list(one.items()))))
    assert content_hash(one) != content_hash({**one, "name": "Anne"})


def test_parents_are_named_by_kind_and_website_id() -> None:
    assert parent_of(SPECS[Kind.property], {"propertyId": "p", "ownerId": "u1"}) == (
        Kind.owner,
        "u1",
    )
    assert parent_of(SPECS[Kind.enquiry], {"enquiryId": "e", "propertyId": "p"}) == (
        Kind.property,
        "p",
    )
    assert parent_of(SPECS[Kind.membership], {"userId": "u1"}) == (Kind.owner, "u1")
    assert parent_of(SPECS[Kind.owner], {"userId": "u1"}) is None
    assert parent_of(SPECS[Kind.property], {"propertyId": "p"}) is None


def test_names_split_at_the_first_space_unless_first_and_last_are_given() -> None:
    assert split_name({"name": "Mary Ann Smith"}) == ("Mary", "Ann Smith")
    assert split_name({"name": "Cher"}) == ("Cher", None)
    assert split_name({"name": "X", "firstName": "Ann", "lastName": "Lee"}) == ("Ann", "Lee")
    assert split_name({"guestName": "Gus Guest"}, "guestName") == ("Gus", "Guest")
    assert split_name({}) == (None, None)


@pytest.mark.parametrize("code", ["ZZZ", "XYZ", "£££"])
def test_a_currency_iso_4217_does_not_list_is_refused_naming_the_field(code: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Membership.model_validate({"membershipId": "m1", "userId": "u1", "currency": code})
    assert refused.value.errors()[0]["loc"] == ("currency",)
    assert "ISO 4217" in refused.value.errors()[0]["msg"]


def test_a_listed_currency_is_kept_lower_case_as_stripe_writes_it() -> None:
    assert Booking.model_validate({"bookingId": "b1", "currency": "JPY"}).currency == "jpy"
