"""The Training tab shows the dataset's aspect-ratio bucket plan (a real local server, ``gradio_client``):
the check's report holds a table of buckets, shapes, counts and crops, and the tab explains buckets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradio_http import GradioSession
from live_server import DEMO_PASSWORD as PASSWORD
from live_server import demo_server_fixture  # noqa: F401 (the demo_server fixture)
from PIL import Image
from sqlalchemy import update

from studio.db.models import Brand


def test_the_check_shows_the_bucket_plan(services: Any, demo_server: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    with services.sessions.begin() as session:  # the embedded 64-px model, whatever the studio default
        session.execute(update(Brand).where(Brand.slug == "lagoon").values(base_model="embedded:toyworld"))
    ada = Client(demo_server, auth=("ada", PASSWORD), verbose=False)
    dataset_id = ada.predict("lagoon", "mixed", api_name="/create_dataset")["value"]
    files = []
    for i, size in enumerate([(96, 64), (112, 63), (64, 96), (64, 64)]):
        path = tmp_path / f"teal_{i}.png"
        Image.new("RGB", size, (0, 128, 100 + i)).save(path)
        files.append(handle_file(str(path)))
    ada.predict(dataset_id, files, api_name="/add_images")
    report = ada.predict(dataset_id, "", "lagoon-style", api_name="/check_dataset")
    assert "**Bucket plan** near 64×64 px (`embedded:toyworld`)" in report
    assert "| bucket | shape | images | crop | files |" in report
    assert "| 80×48 | landscape 5:3 | 2 | 9% | teal_0.png, teal_1.png |" in report
    assert "| 48×80 | portrait 3:5 | 1 | 9% | teal_2.png |" in report
    assert "| 64×64 | square 1:1 | 1 | 0% | teal_3.png |" in report
    assert "Mixed shapes: 3 aspect-ratio buckets" in report

    with GradioSession(demo_server) as page:
        assert page.login("ada", PASSWORD).status_code == 200
        texts = [str(c["props"].get("value", "")) for c in page.config()["components"]]
    assert any("aspect-ratio buckets" in t and "never squashed" in t for t in texts)  # the help
