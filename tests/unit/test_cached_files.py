"""Links for Gradio's cached files (studio.ui.cached_files): bound to one user, and mapped both ways."""

from __future__ import annotations

from pathlib import Path

from studio.ui.cached_files import PREFIX, CachedFiles
from studio.ui.file_access import link_path

META = {"_type": "gradio.FileData"}


def test_a_link_is_served_only_to_its_user_while_the_file_is_there(tmp_path: Path) -> None:
    cached = CachedFiles()
    file = tmp_path / "ab" / "map.png"
    file.parent.mkdir()
    file.write_bytes(b"png")
    link = cached.link("Mia", str(file))
    assert link.startswith(PREFIX) and link.endswith("/map.png") and str(tmp_path) not in link
    assert cached.link("mia", str(file)) == link  # one link per user and file
    assert cached.link("gus", str(file)) != link
    token = link[len(PREFIX) :].split("/")[0]
    assert cached.path_for(token, "mia") == file
    assert cached.path_for(token, "gus") is None and cached.path_for(token, None) is None
    assert link_path(f"/gradio_api/file={link}") == link  # how the page shows an upload
    file.unlink()
    assert cached.path_for(token, "mia") is None


def test_events_take_their_users_links_and_give_links_for_local_paths(tmp_path: Path) -> None:
    cached = CachedFiles()
    file = tmp_path / "up.png"
    file.write_bytes(b"png")
    link = cached.link("mia", str(file))
    sent = [{"path": link, "url": f"http://h/gradio_api/file={link}", "meta": META}, "text"]
    assert cached.inward(sent, "mia")[0]["path"] == str(file)
    assert cached.inward(sent, "gus")[0]["path"] == link  # another user's link stays a link (refused)
    out = {"path": str(file), "url": f"http://h:1/gradio_api/file={file}", "meta": META}
    shown = cached.outward([out, {"path": "http://h:1/studio/files/image/1/a.png", "meta": META}], "mia")
    assert shown[0]["path"] == shown[0]["url"] == f"http://h:1{link}"
    assert shown[1]["path"] == "http://h:1/studio/files/image/1/a.png"  # studio links pass as they are
    assert cached.outward({"details": {"path": str(file)}}, "mia") == {"details": {"path": str(file)}}
