"""Every HubSpot property crm-sync writes, as data: the custom ones (created by
`crm-sync hubspot setup`) and the HubSpot-defined ones it fills. The same definitions drive the
mapping of values (`value_for`), the fake HubSpot's checks, the tests and the README table
(`markdown_table`).

HubSpot's property model (https://developers.hubspot.com/docs/api-reference/latest/crm/properties/guide):
- `type` is one of string, number, date, datetime, enumeration, bool; `fieldType` says how it
  shows (text, textarea, number, date, select, radio, checkbox, booleancheckbox...);
- enumeration and bool properties take only the `value` of one of their options;
- a `date` property holds a calendar day, sent as epoch milliseconds at midnight UTC (HubSpot
  refuses any other time of day); a `datetime` holds an instant in epoch milliseconds;
- a string value holds at most 65,536 characters;
- `hasUniqueValue` makes a property usable as `idProperty` in upserts and reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args

from app.settings import HubSpotSettings

PropertyType = Literal["string", "number", "date", "datetime", "enumeration", "bool"]
ObjectName = Literal["contacts", "listings", "deals", "leads", "notes"]
OBJECT_NAMES: tuple[ObjectName, ...] = get_args(ObjectName)

GROUP = "crm_sync"  # the property group setup creates on every object type
GROUP_LABEL = "crm-sync (website)"
TEXT_MAX = 65_536  # characters in a string property value
NOTE_ID = "crm_sync_note_id"  # our unique id on notes: looked up before a re-create

# fieldType for each type when not stated.
DEFAULT_FIELD = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "enumeration": "select",
    "bool": "booleancheckbox",
}
BOOL_OPTIONS = ("true", "false")


@dataclass(frozen=True, slots=True)
class PropertyDef:
    """One HubSpot property: `object` is our name of its object type (listings stands for
    the `HUBSPOT_LISTING_OBJECT_TYPE` setting), `options` the allowed values of an
    enumeration or bool, `custom` whether setup creates it (False: HubSpot defines it)."""

    object: ObjectName
    name: str
    label: str
    type: PropertyType
    options: tuple[str, ...] = ()
    unique: bool = False
    custom: bool = True
    field_type: str = ""
    description: str = ""
    read_only: bool = field(default=False)

    @property
    def fieldType(self) -> str:
        return self.field_type or DEFAULT_FIELD[self.type]

    @property
    def allowed(self) -> tuple[str, ...]:
        """The values an enumeration or bool takes (empty: any value of its type)."""
        return BOOL_OPTIONS if self.type == "bool" else self.options

    def create_body(self) -> dict[str, Any]:
        """The body of `POST /crm/v3/properties/{objectType}` that creates this property."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.fieldType,
            "groupName": GROUP,
            "hasUniqueValue": self.unique,
        }
        if self.description:
            body["description"] = self.description
        if self.allowed:
            body["options"] = [
                {"label": _label(v), "value": v, "displayOrder": n}
                for n, v in enumerate(self.allowed)
            ]
        return body


def _label(value: str) -> str:
    return value.replace("_", " ").capitalize()


def _custom(
    obj: ObjectName, name: str, label: str, type_: PropertyType = "string", **kw: Any
) -> PropertyDef:
    return PropertyDef(obj, name, label, type_, **kw)


def _hubspot(obj: ObjectName, name: str, type_: PropertyType = "string", **kw: Any) -> PropertyDef:
    return PropertyDef(obj, name, name, type_, custom=False, **kw)


ACCOUNT_STATUSES = ("active", "inactive", "suspended", "pending")
LISTING_STATUSES = ("draft", "pending", "approved", "published", "rejected", "archived")
ENQUIRY_STATUSES = ("new", "contacted", "qualified", "converted", "lost")
MEMBERSHIP_TIERS = ("bronze", "silver", "gold")


def definitions(settings: HubSpotSettings | None = None) -> tuple[PropertyDef, ...]:
    """Every property crm-sync writes, for these settings (the id properties' names are
    settings; leads' properties only when enquiries go to leads). None: the defaults, with
    leads included (what the README documents)."""
    listing_id = settings.listing_id_property if settings else "website_property_id"
    booking_id = settings.booking_id_property if settings else "website_booking_id"
    enquiry_id = settings.enquiry_id_property if settings else "website_enquiry_id"
    leads = settings is None or settings.enquiry_object == "lead"
    found = [
        # contacts: owners, guests and memberships
        _custom("contacts", "website_user_id", "Website user id", unique=True),
        _custom("contacts", "website_role", "Website role"),
        _custom(
            "contacts",
            "website_account_status",
            "Website account status",
            "enumeration",
            options=ACCOUNT_STATUSES,
        ),
        _custom("contacts", "website_signup_date", "Website signup date", "date"),
        _custom("contacts", "membership_status", "Membership status"),
        _custom(
            "contacts",
            "membership_tier",
            "Membership tier",
            "enumeration",
            options=MEMBERSHIP_TIERS,
        ),
        _custom("contacts", "membership_billing_cycle", "Membership billing cycle"),
        _custom("contacts", "membership_price", "Membership price", "number"),
        _custom("contacts", "stripe_customer_id", "Stripe customer id"),
        _custom("contacts", "stripe_subscription_id", "Stripe subscription id"),
        _custom("contacts", "membership_start_date", "Membership start date", "date"),
        _custom("contacts", "membership_end_date", "Membership end date", "date"),
        _custom("contacts", "membership_renewal_date", "Membership renewal date", "date"),
        _custom("contacts", "membership_cancelled_date", "Membership cancelled date", "date"),
        _custom(
            "contacts", "membership_last_payment_date", "Membership last payment at", "datetime"
        ),
        _custom(
            "contacts", "membership_last_payment_amount", "Membership last payment amount", "number"
        ),
        _custom("contacts", "membership_next_payment_date", "Membership next payment date", "date"),
        _custom("contacts", "membership_auto_renew", "Membership auto-renews", "bool"),
        _custom(
            "contacts", "membership_payment_failure_count", "Membership failed payments", "number"
        ),
        # listings
        _custom("listings", listing_id, "Website property id", unique=True),
        _custom("listings", "max_guests", "Maximum guests", "number"),
        _custom(
            "listings", "listing_status", "Listing status", "enumeration", options=LISTING_STATUSES
        ),
        _custom("listings", "listing_country", "Listing country"),
        _custom("listings", "listing_slug", "Listing slug"),
        _custom("listings", "listing_plan", "Listing plan"),
        # deals: bookings and enquiries
        _custom("deals", booking_id, "Website booking id", unique=True),
        _custom("deals", enquiry_id, "Website enquiry id", unique=True),
        _custom("deals", "check_in_date", "Check-in date", "date"),
        _custom("deals", "check_out_date", "Check-out date", "date"),
        _custom("deals", "number_of_guests", "Number of guests", "number"),
        _custom("deals", "booking_status", "Booking status"),
        _custom("deals", "payment_status", "Payment status"),
        _custom(
            "deals", "enquiry_status", "Enquiry status", "enumeration", options=ENQUIRY_STATUSES
        ),
        _custom("deals", "enquiry_source", "Enquiry source"),
        # notes: our id, looked up before a re-create (notes have no upsert)
        _custom(
            "notes",
            NOTE_ID,
            "crm-sync note id",
            description="The website's note or activity id; crm-sync finds a note by it",
        ),
        # HubSpot's own properties crm-sync fills
        _hubspot("contacts", "email"),
        _hubspot("contacts", "firstname"),
        _hubspot("contacts", "lastname"),
        _hubspot("contacts", "phone"),
        _hubspot("contacts", "company"),
        _hubspot("contacts", "address"),
        _hubspot("contacts", "city"),
        _hubspot("contacts", "state"),
        _hubspot("contacts", "zip"),
        _hubspot("contacts", "country"),
        _hubspot("listings", "hs_name"),
        _hubspot("listings", "hs_address_1"),
        _hubspot("listings", "hs_city"),
        _hubspot("listings", "hs_zip"),
        _hubspot("listings", "hs_bedrooms", "number"),
        _hubspot("listings", "hs_bathrooms", "number"),
        _hubspot("listings", "hs_price", "number"),
        _hubspot("deals", "dealname"),
        _hubspot("deals", "pipeline"),  # enumerations whose options are the account's
        _hubspot("deals", "dealstage"),  # pipelines: not checked here
        _hubspot("deals", "amount", "number"),
        _hubspot("deals", "deal_currency_code"),
        _hubspot("deals", "description"),
        _hubspot("notes", "hs_note_body"),
        _hubspot("notes", "hs_timestamp", "datetime"),
    ]
    if leads:
        found += [
            _custom("leads", enquiry_id, "Website enquiry id", unique=True),
            _custom(
                "leads", "enquiry_status", "Enquiry status", "enumeration", options=ENQUIRY_STATUSES
            ),
            _custom("leads", "enquiry_source", "Enquiry source"),
            _hubspot("leads", "hs_lead_name"),
            _hubspot("leads", "hs_pipeline_stage"),
        ]
    # Read-only properties HubSpot keeps on every object.
    for obj in OBJECT_NAMES:
        found += [
            _hubspot(obj, "hs_object_id", "number", read_only=True),
            _hubspot(obj, "createdate", "datetime", read_only=True),
            _hubspot(obj, "lastmodifieddate", "datetime", read_only=True),
        ]
    return tuple(found)


def by_object(
    settings: HubSpotSettings | None = None,
) -> dict[ObjectName, dict[str, PropertyDef]]:
    """definitions() as {object name: {property name: definition}}."""
    out: dict[ObjectName, dict[str, PropertyDef]] = {obj: {} for obj in OBJECT_NAMES}
    for d in definitions(settings):
        out[d.object][d.name] = d
    return out


# -- values --------------------------------------------------------------------------------


def _parsed(value: Any) -> date | datetime | None:
    if isinstance(value, date):  # datetime included
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        if "T" in value or " " in value:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        return date.fromisoformat(value)
    except ValueError:
        return None


def _ms(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


def date_ms(value: Any) -> str | None:
    """A `date` property's value: the calendar day the website meant (the day in the value's
    own offset: 2027-05-01T00:30:00+02:00 is 1 May), as epoch ms at midnight UTC."""
    parsed = _parsed(value)
    if parsed is None:
        return None
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    return _ms(datetime(day.year, day.month, day.day, tzinfo=UTC))


def datetime_ms(value: Any) -> str | None:
    """A `datetime` property's value: the instant as epoch ms (no offset: UTC; a bare date:
    its midnight UTC)."""
    parsed = _parsed(value)
    if parsed is None:
        return None
    if not isinstance(parsed, datetime):
        parsed = datetime(parsed.year, parsed.month, parsed.day)
    return _ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def text(value: Any) -> str | None:
    """Any value as HubSpot's string form (booleans `true`/`false`, 3.0 as `3`)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def value_for(definition: PropertyDef, value: Any) -> str | None:
    """`value` as `definition`'s property takes it (None: nothing to send)."""
    if definition.type == "date":
        return date_ms(value)
    if definition.type == "datetime":
        return datetime_ms(value)
    return text(value)


# -- documentation -------------------------------------------------------------------------


def markdown_table(settings: HubSpotSettings | None = None) -> str:
    """The README's table of custom properties (setup creates these), one row each."""
    rows = [
        "| object | property | label | type | fieldType | options |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for d in definitions(settings):
        if not d.custom:
            continue
        name = f"`{d.name}`" + (" (unique)" if d.unique else "")
        options = ", ".join(f"`{o}`" for o in d.allowed)
        rows.append(f"| {d.object} | {name} | {d.label} | {d.type} | {d.fieldType} | {options} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m app.providers.hubspot.properties: the README's table
    print(markdown_table(), end="")
