"""Keyed replacements for FHIR resource ids, ``fullUrl``s and references.

Links inside a bundle survive: a resource's id and every ``Type/id`` reference to it map to
the same pseudonymous id, and a ``urn:uuid:`` ``fullUrl`` and the references that quote it
map to the same new ``urn:uuid:``. Ids are often MRNs or encounter numbers, so nothing of
the original is kept; references of any other form (conditional ``Patient?identifier=``,
``#contained``, an identifier-only reference) cannot be rewritten safely and are removed.
"""

from __future__ import annotations

import re
import uuid

from medsight.keyed_digest import keyed_digest

_ID = r"[A-Za-z0-9\-\.]{1,64}"
# Type/id, optionally behind a server base URL and before /_history/version
_TYPED = re.compile(
    rf"^(?:[a-z][a-z0-9+.\-]*://[^\s?#]*/)?([A-Z][A-Za-z]+)/({_ID})(?:/_history/{_ID})?$"
)
_URN = re.compile(r"^urn:(?:uuid|oid):(\S{1,128})$", re.IGNORECASE)


def pseudonymous_id(key: str, resource_type: str, original: str) -> str:
    """The replacement id of the ``resource_type`` resource with id ``original`` (a UUID)."""
    digest = keyed_digest(key, "ehr-fhir-id", f"{resource_type}/{original}")
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _urn(key: str, original: str) -> str:
    digest = keyed_digest(key, "ehr-fhir-urn", original.lower())
    return f"urn:uuid:{uuid.UUID(bytes=digest[:16], version=4)}"


def pseudonymous_reference(key: str, reference: str) -> str | None:
    """The rewritten ``Reference.reference``; None when it has no form that can be kept."""
    text = reference.strip()
    if match := _TYPED.match(text):
        kind, original = match.groups()
        return f"{kind}/{pseudonymous_id(key, kind, original)}"
    if _URN.match(text):
        return _urn(key, text)
    return None


def pseudonymous_full_url(key: str, full_url: str, resource_type: str, resource_id: str) -> str:
    """The rewritten ``Bundle.entry.fullUrl`` (always a ``urn:uuid:``).

    A ``urn:uuid:`` keeps its link to references that quote it; a server URL
    (``.../Patient/123``) becomes the urn of the resource's new id.
    """
    text = full_url.strip()
    if _URN.match(text):
        return _urn(key, text)
    if match := _TYPED.match(text):
        kind, original = match.groups()
        return f"urn:uuid:{pseudonymous_id(key, kind, original)}"
    return f"urn:uuid:{pseudonymous_id(key, resource_type, resource_id or text)}"
