"""Reading Content Credentials back with the C2PA SDK's own Reader, trusting a studio's CA (issue 21)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import c2pa

from studio.provenance.sign import sdk_context


def manifest_store(png: bytes, home: Path) -> dict[str, Any]:
    """The manifest store of ``png`` as the SDK's Reader gives it, trusting the CA of the studio at ``home``
    (``<home>/credentials/ca.pem``)."""
    anchors = (home / "credentials" / "ca.pem").read_bytes()
    with sdk_context(anchors) as context, c2pa.Reader("image/png", io.BytesIO(png), None, context) as reader:
        return json.loads(reader.json())


def assertions(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest's assertions by label."""
    return {a["label"]: a["data"] for a in manifest["assertions"]}


def active(store: dict[str, Any]) -> dict[str, Any]:
    """The store's active manifest."""
    return store["manifests"][store["active_manifest"]]


def valid_with_hard_binding(store: dict[str, Any]) -> bool:
    """Trusted, no failure, and the hard binding (the pixels' data hash) matches."""
    results = store["validation_results"]["activeManifest"]
    codes = {item["code"] for item in results["success"]}
    return (
        store["validation_state"] == "Trusted"
        and not results["failure"]
        and "assertion.dataHash.match" in codes
    )
