"""Who may call each endpoint of the web app: the one table the security suite checks the running app against.

Keys are the endpoints' ``api_name`` as the app serves them (``/config`` lists them, private ones included:
a browser, or anyone with a login, can call those by index). Gradio numbers repeated names (``show_1``,
``list_page_2``…); a numbered name shares the entry of its base name (see :func:`access_for`).

The services enforce this on every call, from the roles and memberships stored in the database; hiding a tab
or a button in the UI is only a convenience. A new endpoint must get a row here, or the suite fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROLES = ("admin", "marketer", "reviewer")


@dataclass(frozen=True)
class Access:
    """Roles that may call an endpoint (admins may call every endpoint); with ``member`` the caller must
    also belong to the brand the call names (admins need not). ``why`` says what the endpoint does."""

    roles: frozenset[str]
    member: bool = False
    why: str = ""

    def allows(self, roles: frozenset[str], is_member: bool) -> bool:
        """Whether a caller with ``roles`` (and membership of the brand involved) may call it."""
        if "admin" in roles:
            return True
        return bool(roles & self.roles) and (is_member or not self.member)


ANYONE = frozenset(ROLES)  # any signed-in user; what they get is limited to their own brands
MARKETERS = frozenset({"marketer", "admin"})
REVIEWERS = frozenset({"reviewer", "admin"})
ADMINS = frozenset({"admin"})

ENDPOINTS: dict[str, Access] = {
    # the shell
    "on_load": Access(ANYONE, why="who am I, which tabs to show"),
    "lambda": Access(
        ANYONE, why="UI-only helpers (seed dice, page and queue counters, drop a pending remix)"
    ),
    "cancel": Access(ANYONE, why="cancel the caller's own running generation"),
    "change_password": Access(
        ANYONE, why="change the caller's own password, given the current one; ends the caller's sessions"
    ),
    # Generate
    "brand_changed": Access(MARKETERS, member=True, why="a brand's generation options"),
    "generate": Access(MARKETERS, member=True, why="generate images"),
    "cfg_sweep": Access(MARKETERS, member=True, why="one image per CFG scale"),
    "list_brands": Access(ANYONE, why="the caller's brands (admins: all)"),
    "count_tokens": Access(MARKETERS, member=True, why="the prompt as sent, its tokens for the model"),
    "run_progress": Access(ANYONE, why="UI-only: the progress line of the caller's own run"),
    "run_finished": Access(ANYONE, why="UI-only: the last line of the caller's own run, the poll stops"),
    "run_expected": Access(ANYONE, why="UI-only: a Generate click starts polling the caller's progress line"),
    "last_seed": Access(ANYONE, why="UI-only: Reuse seed, the seed in the Details panel into the seed box"),
    "generate_api": Access(MARKETERS, member=True, why="generate images, arguments by name (the API)"),
    "brands_api": Access(ANYONE, why="the caller's brands; for those who generate, LoRAs, templates, sizes"),
    "remix_api": Access(ANYONE, member=True, why="an image's recipe as generate_api's arguments"),
    "regenerate_api": Access(MARKETERS, member=True, why="make an image again from its recipe (the API)"),
    "settings_from_png": Access(
        MARKETERS, why="a dropped PNG's settings into the Generate form (the brand's: members only)"
    ),
    # Review
    "review_queue": Access(REVIEWERS, member=True, why="pending images of a brand (empty: all the caller's)"),
    "load_queue": Access(REVIEWERS, member=True, why="pending images of a brand (empty: all the caller's)"),
    "show": Access(ANYONE, why="the image at the session's queue position (the queue is reviewers' only)"),
    "review_approve": Access(REVIEWERS, member=True, why="approve the shown image"),
    "review_reject": Access(REVIEWERS, member=True, why="reject the shown image with a comment"),
    "handler": Access(REVIEWERS, member=True, why="bulk approve / reject of chosen images"),
    # Gallery
    "first_options": Access(ANYONE, why="gallery filters of the caller's brands"),
    "options": Access(ANYONE, member=True, why="gallery filters of a brand"),
    "list_page": Access(ANYONE, member=True, why="a page of a brand's images"),
    "open_image": Access(ANYONE, member=True, why="one image with its recipe and history"),
    "regenerate": Access(MARKETERS, member=True, why="make an image again from its recipe"),
    "make_remix": Access(
        ANYONE, member=True, why="an image's recipe; for those who generate, the Generate form filled with it"
    ),
    "compare": Access(ANYONE, member=True, why="recipes of chosen images side by side"),
    "export_selected": Access(ANYONE, member=True, why="zip of the chosen approved images"),
    "export_matching": Access(ANYONE, member=True, why="zip of the approved images that match"),
    # Editing (issue 19): the service checks the role (reviewers too with STUDIO_REVIEWERS_MAY_EDIT=1)
    "kind_changed": Access(ANYONE, why="UI-only: the edit kind's fields and default strength"),
    "open_for_edit": Access(
        ANYONE, member=True, why="Edit / Fix region: the Generate tab's edit mode on an image"
    ),
    "reveal_panel": Access(ANYONE, why="UI-only: shows the edit panel once its tab is on screen"),
    "fill_source": Access(
        ANYONE, why="the edit panel's editor: the opened image (one the caller may see) and its marked region"
    ),
    "apply": Access(MARKETERS, member=True, why="edit an image (image-to-image, inpaint, expand, upscale)"),
    "expand_all": Access(MARKETERS, member=True, why="expand an approved image to every channel size"),
    "show_lineage": Access(ANYONE, member=True, why="an image's parent, children and marked regions"),
    "edit_img2img_api": Access(MARKETERS, member=True, why="image-to-image (the API)"),
    "edit_inpaint_api": Access(MARKETERS, member=True, why="inpainting a mask or a marked region (the API)"),
    "edit_expand_api": Access(MARKETERS, member=True, why="expand to a size preset (the API)"),
    "edit_upscale_api": Access(MARKETERS, member=True, why="upscale x2 / x4 (the API)"),
    "expand_all_api": Access(MARKETERS, member=True, why="expand to every channel size (the API)"),
    "lineage_api": Access(ANYONE, member=True, why="an image's parent, children and group (the API)"),
    "approve_group": Access(REVIEWERS, member=True, why="approve a campaign group's pending images"),
    # Brands
    "list_rows": Access(ANYONE, why="the caller's brands (admins: all)"),
    "get_brand": Access(ANYONE, member=True, why="one brand's profile"),
    "load_form": Access(ANYONE, member=True, why="a brand's profile in the edit form"),
    "create_brand": Access(ADMINS, why="create a brand"),
    "update_brand": Access(ADMINS, why="change a brand"),
    "pick_created": Access(ANYONE, why="sets the brand picker to a slug typed in the form (reads nothing)"),
    "upload_lora": Access(ADMINS, why="add a LoRA file (diffusers, kohya or peft) to a brand"),
    "lora_choices": Access(ANYONE, member=True, why="a brand's LoRAs for the download picker"),
    "download_lora": Access(ANYONE, member=True, why="a brand's LoRA version as a kohya or diffusers file"),
    "preview_template": Access(ADMINS, why="the control map a layout image makes (writes nothing)"),
    "create_template": Access(ADMINS, why="add a layout template made from an image"),
    "grant_brand": Access(ADMINS, why="add a member to a brand"),
    "revoke_brand": Access(ADMINS, why="remove a member from a brand"),
    "member_choices": Access(
        ANYONE, why="the member picker's usernames: the shell runs it for admins, others get nothing"
    ),
    # Training (jobs and datasets are looked up by id: the ids come from the browser, so every call checks)
    "load": Access(ANYONE, why="the brand list of the Training tab (the caller's brands)"),
    "preset_values": Access(ANYONE, why="UI-only: a preset's numbers into the expert fields"),
    "pick_row": Access(ANYONE, why="UI-only: the clicked job row's id"),
    "tick": Access(ADMINS, why="the followed job's progress, every 2 s"),
    "list_datasets": Access(ADMINS, why="a brand's training datasets"),
    "refresh_datasets": Access(ADMINS, why="a brand's training datasets, fresh counts, the chosen one kept"),
    "create_dataset": Access(ADMINS, why="a new dataset"),
    "show_dataset": Access(ADMINS, why="a dataset's captions"),
    "thumbnails": Access(ADMINS, why="a dataset's images"),
    "add_images": Access(ADMINS, why="upload training images"),
    "save_captions": Access(ADMINS, why="edit captions"),
    "caption_all": Access(ADMINS, why="caption every image from a template"),
    "check_dataset": Access(ADMINS, why="check a dataset before training"),
    "queue_training": Access(ADMINS, why="queue a LoRA training job"),
    "list_jobs": Access(ADMINS, why="the training jobs"),
    "training_jobs": Access(ADMINS, why="the training jobs"),
    "show_job": Access(ADMINS, why="a job's progress, loss and checkpoints"),
    "show_quality": Access(ADMINS, why="a checkpoint's quality gate: scores, images with and without LoRA"),
    "cancel_job": Access(ADMINS, why="stop a job"),
    "resume_job": Access(ADMINS, why="resume an interrupted job"),
    "publish_checkpoint": Access(ADMINS, why="make a checkpoint the brand's active LoRA version"),
    "training_workers": Access(ADMINS, why="the live workers: machine, device, current job, heartbeat"),
    "list_workers": Access(ADMINS, why="the live workers, every 2 s"),
    # Users
    "list_users": Access(ADMINS, why="every account"),
    "add_user": Access(ADMINS, why="create an account"),
    "set_roles": Access(ADMINS, why="change an account's roles"),
    "reset_password": Access(
        ADMINS,
        why="set an account's password, own included, and end its sessions (admins only: users change "
        "their own with change_password, which asks for the current one)",
    ),
    "disable_user": Access(ADMINS, why="refuse an account's logins"),
    "enable_user": Access(ADMINS, why="let a disabled account log in again (and clear its lockout)"),
    "unlock_user": Access(ADMINS, why="clear an account's lockout after failed logins"),
    "pick_user": Access(ANYONE, why="UI-only: the clicked user row's name and roles into the form"),
}

_NUMBERED = re.compile(r"^(?P<base>.+?)_\d+$")


def base_name(api_name: str) -> str:
    """``show_4`` → ``show`` (Gradio numbers repeated names); other names unchanged."""
    if api_name in ENDPOINTS:
        return api_name
    match = _NUMBERED.match(api_name)
    return match.group("base") if match else api_name


def access_for(api_name: str) -> Access | None:
    """The table's row for a served endpoint name, or None when it has none."""
    return ENDPOINTS.get(base_name(api_name))
