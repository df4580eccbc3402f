"""Our own models of the request bodies crm-sync sends to HubSpot, written from HubSpot's public
documentation (field names, required fields, limits), and `errors(method, path, body)` that
checks a body against the operation its path names. The respx tests check every request the
adapter sends with it; the fake HubSpot refuses a body that does not conform with HubSpot's 400
`VALIDATION_ERROR`.

Facts used (https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/guide
and the batch, search, associations v4 and properties guides beside it):
- batch create/update/upsert/read take `{"inputs": [...]}`, at most 100 inputs a call;
- every property value is sent as a string (`properties` is a map of name to string);
- upsert inputs carry `id` and `idProperty` (a unique property), update inputs an object id;
- a batch read names `properties` and `propertiesWithHistory` (both lists) and may use
  `idProperty`;
- search takes `filterGroups` (at most 5, each at most 6 filters), `sorts`, `query`,
  `properties`, `limit` (at most 200) and `after`;
- v4 associations take `{"inputs": [{"from": {"id"}, "to": {"id"}, "types"?: [...]}]}`;
- properties: `POST /crm/v3/properties/{objectType}` with name, label, type, fieldType,
  groupName (options for enumerations); groups at `/crm/v3/properties/{objectType}/groups`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

BATCH_MAX = 100  # inputs per CRM v3 batch call
SEARCH_LIMIT_MAX = 200  # results per search page
SEARCH_GROUPS_MAX = 5  # filterGroups per search
SEARCH_FILTERS_MAX = 6  # filters per group


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ObjectRef(_Body):
    """`{"id": "123"}`: an object by its HubSpot id."""

    id: str = Field(min_length=1)


class AssociationType(_Body):
    """One association type: HUBSPOT_DEFINED types are HubSpot's numbered defaults."""

    associationCategory: Literal["HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED"]
    associationTypeId: int


class AssociationOnCreate(_Body):
    """An association made with a new object (batch create)."""

    to: ObjectRef
    types: list[AssociationType] = Field(min_length=1)


class CreateInput(_Body):
    properties: dict[str, str]
    associations: list[AssociationOnCreate] = Field(default_factory=list)
    objectWriteTraceId: str | None = None


class UpdateInput(_Body):
    id: str = Field(min_length=1)
    idProperty: str | None = None
    properties: dict[str, str]
    objectWriteTraceId: str | None = None


class UpsertInput(_Body):
    id: str = Field(min_length=1)
    idProperty: str | None = None
    properties: dict[str, str]
    objectWriteTraceId: str | None = None


class BatchCreate(_Body):
    inputs: list[CreateInput] = Field(max_length=BATCH_MAX)


class BatchUpdate(_Body):
    inputs: list[UpdateInput] = Field(max_length=BATCH_MAX)


class BatchUpsert(_Body):
    inputs: list[UpsertInput] = Field(max_length=BATCH_MAX)


class BatchRead(_Body):
    inputs: list[ObjectRef] = Field(max_length=BATCH_MAX)
    properties: list[str]
    propertiesWithHistory: list[str]
    idProperty: str | None = None


class CreateOne(_Body):
    """`POST /crm/v3/objects/{objectType}`: one object."""

    properties: dict[str, str]
    associations: list[AssociationOnCreate] = Field(default_factory=list)


Operator = Literal[
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
]


class Filter(_Body):
    propertyName: str = Field(min_length=1)
    operator: Operator
    value: str | None = None
    highValue: str | None = None
    values: list[str] | None = None


class FilterGroup(_Body):
    filters: list[Filter] = Field(max_length=SEARCH_FILTERS_MAX)


class Sort(_Body):
    propertyName: str = Field(min_length=1)
    direction: Literal["ASCENDING", "DESCENDING"] = "ASCENDING"


class Search(_Body):
    """A search: HubSpot's guide sorts with `{propertyName, direction}` objects, and a bare
    property name (`"-name"` descending) is accepted too."""

    filterGroups: list[FilterGroup] = Field(default_factory=list, max_length=SEARCH_GROUPS_MAX)
    sorts: list[Sort | str] = Field(default_factory=list)
    query: str | None = None
    properties: list[str] = Field(default_factory=list)
    limit: int = Field(10, ge=1, le=SEARCH_LIMIT_MAX)
    after: str | None = None


class DefaultAssociationInput(_Body):
    from_: ObjectRef = Field(alias="from")
    to: ObjectRef


class AssociationInput(DefaultAssociationInput):
    types: list[AssociationType] = Field(min_length=1)


class BatchAssociateDefault(_Body):
    inputs: list[DefaultAssociationInput]


class BatchAssociate(_Body):
    inputs: list[AssociationInput]


PropertyType = Literal["string", "number", "date", "datetime", "enumeration", "bool"]
FieldType = Literal[
    "text",
    "textarea",
    "number",
    "date",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "calculation_equation",
    "html",
    "phonenumber",
    "file",
]


class PropertyOption(_Body):
    label: str = Field(min_length=1)
    value: str = Field(min_length=1)
    displayOrder: int | None = None
    hidden: bool = False
    description: str | None = None


class PropertyCreate(_Body):
    """`POST /crm/v3/properties/{objectType}`: one property definition."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=100)
    label: str = Field(min_length=1)
    type: PropertyType
    fieldType: FieldType
    groupName: str = Field(min_length=1)
    description: str | None = None
    options: list[PropertyOption] = Field(default_factory=list)
    hasUniqueValue: bool = False
    formField: bool | None = None
    hidden: bool | None = None
    displayOrder: int | None = None


class PropertyGroupCreate(_Body):
    """`POST /crm/v3/properties/{objectType}/groups`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)
    displayOrder: int | None = None


_OBJECT = r"[^/]+"
_V4 = rf"/crm/v4/associations/{_OBJECT}/{_OBJECT}"
# (method, path pattern, body model or None for an operation that takes no body)
_OPERATIONS: tuple[tuple[str, str, type[BaseModel] | None], ...] = (
    ("POST", rf"/crm/v3/objects/{_OBJECT}/batch/create", BatchCreate),
    ("POST", rf"/crm/v3/objects/{_OBJECT}/batch/update", BatchUpdate),
    ("POST", rf"/crm/v3/objects/{_OBJECT}/batch/upsert", BatchUpsert),
    ("POST", rf"/crm/v3/objects/{_OBJECT}/batch/read", BatchRead),
    ("POST", rf"/crm/v3/objects/{_OBJECT}/search", Search),
    ("POST", rf"/crm/v3/objects/{_OBJECT}", CreateOne),
    ("POST", rf"{_V4}/batch/associate/default", BatchAssociateDefault),
    ("POST", rf"{_V4}/batch/create", BatchAssociate),
    ("POST", rf"/crm/v3/properties/{_OBJECT}/groups", PropertyGroupCreate),
    ("POST", rf"/crm/v3/properties/{_OBJECT}", PropertyCreate),
)


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation crm-sync calls: its method, path pattern and body model."""

    method: str
    pattern: re.Pattern[str]
    body: type[BaseModel] | None


OPERATIONS = tuple(
    Operation(method, re.compile(f"^{template}$"), model) for method, template, model in _OPERATIONS
)


class SpecError(ValueError):
    """A request body that does not match our model of what HubSpot accepts."""


def find(method: str, path: str) -> Operation | None:
    """The operation a request calls, or None for one crm-sync does not model."""
    for op in OPERATIONS:
        if op.method == method.upper() and op.pattern.match(path):
            return op
    return None


def errors(method: str, path: str, body: Any) -> list[str]:
    """What is wrong with this request body (`[]` when it conforms), one `field: problem`
    string each, e.g. `inputs.0.properties.max_guests: Input should be a valid string`."""
    op = find(method, path)
    if op is None:
        return [f"{method} {path} is not an operation crm-sync models"]
    if op.body is None:
        return [] if body is None else [f"{method} {path} takes no body"]
    try:
        op.body.model_validate(body)
    except ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in e['loc']).replace('from_', 'from') or '<body>'}: {e['msg']}"
            for e in exc.errors()
        ]
    return []


def check(method: str, path: str, body: Any) -> None:
    """Raise SpecError naming every problem of a non-conforming body."""
    problems = errors(method, path, body)
    if problems:
        raise SpecError("; ".join(problems))
