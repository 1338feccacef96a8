"""What a request the sidecar could not fully inspect gets: a decision the policy owns.

Every shortfall of inspection is a note on the request (a limit cut the arguments, a body in a
coding no one can read, a path with no single reading). Each note belongs to one setting of the
route's ``inspection`` block, and each setting denies by default: a request is never passed as
clean when part of it was never looked at. Relaxing a setting lets such requests through, with
the note still in the log and the audit record.
"""
from __future__ import annotations

from extproc.core.request import InspectionLimits, Request
from extproc.core.verdict import Action, Verdict

# note -> (setting of InspectionLimits, status when that setting denies)
SHORTFALLS: dict[str, tuple[str, int]] = {
    "path_uncanonical": ("uncanonical_path", 400),
    "body_truncated": ("oversize", 413),
    "query_args_truncated": ("over_limit", 413),
    "form_args_truncated": ("over_limit", 413),
    "json_args_truncated": ("over_limit", 413),
    "json_depth_exceeded": ("over_limit", 413),
    "multipart_parts_truncated": ("over_limit", 413),
    "attack_values_truncated": ("over_limit", 413),
    "attack_scan_truncated": ("over_limit", 413),
    "body_encoding_unsupported": ("uninspectable", 415),
    "body_encoding_invalid": ("uninspectable", 415),
    "body_charset_unknown": ("uninspectable", 415),
    "multipart_invalid": ("uninspectable", 415),
}
DENY = "deny"


def shortfall_verdict(request: Request, limits: InspectionLimits) -> Verdict | None:
    """A deny for the first shortfall (in a fixed order) whose setting denies, or None."""
    notes = request.notes
    if not notes:
        return None
    for note, (setting, status) in SHORTFALLS.items():
        if note in notes and getattr(limits, setting) == DENY:
            return Verdict("inspection", Action.DENY, status, reasons=(f"inspection:{note}",))
    return None
