"""The API's OpenAPI document: ``openapi.yaml`` beside this module, shipped in
the package (``docs/openapi.yaml`` is a link to it: one source)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["openapi_document", "SPEC_FILE"]

SPEC_FILE = Path(__file__).with_name("openapi.yaml")


@cache
def openapi_document() -> dict[str, Any]:
    """The document as JSON data (parsed once)."""
    data: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return data
