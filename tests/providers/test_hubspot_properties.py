"""The property definitions: the README's table is theirs, and they agree with the mapping."""

from __future__ import annotations

from pathlib import Path

from app.providers.hubspot import mapping, properties

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- hubspot-properties:start -->\n", "<!-- hubspot-properties:end -->"


def test_the_readme_table_is_the_one_the_definitions_render() -> None:
    text = README.read_text()
    table = text.split(START, 1)[1].split(END, 1)[0]
    assert table == properties.markdown_table(), (
        "README's custom properties table differs from the definitions: replace it with the "
        "output of `python -m app.providers.hubspot.properties`"
    )


def test_every_property_the_mapping_writes_is_defined() -> None:
    defined = properties.by_object()
    data = {
        "email": "a@example.com",
        "name": "A B",
        "phone": "1",
        "companyName": "C",
        "address": "x",
        "city": "y",
        "state": "s",
        "postcode": "p",
        "country": "GB",
        "role": "owner",
        "status": "active",
        "membershipStatus": "active",
        "signupDate": "2026-01-01",
        "planTier": "gold",
        "billingCycle": "monthly",
        "price": 9.5,
        "stripeCustomerId": "cus_1",
        "stripeSubscriptionId": "sub_1",
        "startDate": "2026-01-01",
        "endDate": "2027-01-01",
        "renewalDate": "2027-01-01",
        "cancelledDate": "2026-06-01",
        "lastPaymentDate": "2026-01-01T10:00:00Z",
        "lastPaymentAmount": 9.5,
        "nextPaymentDate": "2026-02-01",
        "autoRenew": True,
        "paymentFailureCount": 0,
    }
    written = {
        "contacts": mapping.contact(data, "u1") | mapping.membership(data),
        "listings": mapping.listing(
            {
                "title": "T",
                "address": "a",
                "city": "c",
                "postcode": "p",
                "bedrooms": 2,
                "bathrooms": 1,
                "pricePerNight": 10,
                "maxGuests": 4,
                "status": "draft",
                "country": "GB",
                "slug": "s",
                "plan": "p",
            },
            "website_property_id",
            "p1",
        ),
        "deals": mapping.booking_deal(
            {
                "totalPrice": 1,
                "currency": "gbp",
                "checkIn": "2026-01-01",
                "checkOut": "2026-01-02",
                "guests": 2,
                "status": "paid",
                "paymentStatus": "paid",
            },
            "website_booking_id",
            "b1",
            "default",
        )
        | mapping.enquiry_deal(
            {"message": "m", "status": "new", "source": "web", "checkIn": "2026-01-01"},
            "website_enquiry_id",
            "e1",
            "default",
        ),
        "leads": mapping.enquiry_lead(
            {"status": "new", "source": "web"}, "website_enquiry_id", "e1"
        ),
        "notes": mapping.note({"content": "c"}, "n1"),
    }
    for obj, props in written.items():
        assert set(props) <= set(defined[obj]), (obj, set(props) - set(defined[obj]))  # type: ignore[index]
