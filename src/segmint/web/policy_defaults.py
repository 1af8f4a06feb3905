"""The workspace's default campaign policy (consent traits, quiet hours, frequency caps, ad law), edited on the
settings page and stored as `campaign-policy.json` in the workspace folder.

The composer fills a new campaign's `policy` from it; each campaign keeps its own copy (the campaign model is
unchanged: a stored campaign's policy is what it was saved with).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from segmint.campaigns.model import Policy
from segmint.errors import InvalidInput

FILE = "campaign-policy.json"


def policy_path(ws: Any) -> Path:
    """Where the defaults live."""
    return Path(ws.path) / FILE


def load_policy(ws: Any) -> Policy:
    """The saved defaults, or the model's defaults (the Korean ad-law profile) when none were saved."""
    path = policy_path(ws)
    if not path.exists():
        return Policy()
    try:
        return Policy.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise InvalidInput(f"unreadable campaign policy defaults: {exc}", where=str(path)) from None


def save_policy(ws: Any, policy: Policy) -> None:
    """Write the defaults atomically."""
    path = policy_path(ws)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(policy.model_dump(mode="json"), ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)


def parse_policy(data: dict[str, Any]) -> Policy:
    """A Policy from form data; a validation error names the field."""
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(str(err["msg"]).removeprefix("Value error, "), where=f"policy.{loc}") from None
