"""/generate_api takes a guidance as named fields (issue 18): the Guidance fields as a JSON object."""

from __future__ import annotations

from studio.services.generation_input import number_problems
from studio.ui.generate_api import request_from_fields


def test_guidance_passes_through_and_is_checked_with_the_numbers() -> None:
    ask = request_from_fields({"brand": "acme", "prompt": "x", "guidance": {"method": "fdg", "stop": 0.8}})
    assert ask.guidance == {"method": "fdg", "stop": 0.8}
    assert number_problems(ask) == []
    bad = request_from_fields({"brand": "acme", "prompt": "x", "guidance": {"method": "apg", "apg_eta": 9}})
    assert [p.field for p in number_problems(bad)] == ["guidance.apg_eta"]
    text = request_from_fields({"brand": "acme", "prompt": "x", "guidance": "fdg"})
    assert [p.field for p in number_problems(text)] == ["guidance"]
