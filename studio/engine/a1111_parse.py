"""Reading A1111's ``parameters`` text (infotext) back: the reverse of :mod:`studio.engine.a1111`.

:func:`parse_parameters` follows AUTOMATIC1111's ``parse_generation_parameters``
(``modules/infotext_utils.py``): the lines before ``Negative prompt:`` are the prompt, the lines after it
the negative prompt, and the last line holds ``key: value`` fields (a value JSON-quoted when it holds ``,``,
``:`` or a line break) when it has at least three of them. ``Size: WxH`` becomes ``Size-1`` / ``Size-2``.

:func:`lora_tags` takes ``<lora:name:weight>`` (and ``<lyco:…>``) tags out of a prompt, and
:func:`studio_sampler` maps A1111's ``Sampler`` + ``Schedule type`` to one of the studio's samplers.

This module imports neither torch nor diffusers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from studio.engine.a1111 import FLOW_SCHEDULE, SCHEDULES

#: one ``key: value`` field of the last line (A1111's ``re_param_code``)
_FIELD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")
#: ``<lora:name:weight>``, ``<lora:name>``, ``<lyco:name:weight>`` (A1111's extra-network syntax)
_LORA_TAG = re.compile(r"<(lora|lyco):([^:>]+)(?::([^:>]*))?(?::[^>]*)?>", re.IGNORECASE)
#: any other extra-network tag (``<hypernet:…>``), named as not used
_OTHER_TAG = re.compile(r"<(\w+):[^>]*>")
#: schedules that mean "the sampler's own" (A1111 1.9+ writes Automatic; older versions write none)
_PLAIN = (None, "", "Automatic", "Uniform")
#: old-style sampler names carried their schedule as a suffix ("DPM++ 2M Karras")
_SUFFIXES = ("Karras", "Exponential", "Polyexponential", "SGM Uniform")


@dataclass(frozen=True)
class Infotext:
    """A parsed ``parameters`` text: the prompts and the last line's fields (values unquoted)."""

    prompt: str
    negative_prompt: str
    fields: dict[str, str]


def unquote(value: str) -> str:
    """A1111's ``unquote``: a JSON-quoted value decoded, anything else as it is."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    try:
        return str(json.loads(value))
    except json.JSONDecodeError:
        return value


def parse_parameters(text: str) -> Infotext:
    """The prompt, negative prompt and fields of an A1111 ``parameters`` text (as A1111 reads it)."""
    *lines, last = text.strip().split("\n")
    if len(_FIELD.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    fields: dict[str, str] = {}
    for key, value in _FIELD.findall(last):
        value = unquote(value.strip())
        size = _SIZE.match(value)
        if size is not None:
            fields[f"{key}-1"], fields[f"{key}-2"] = size.group(1), size.group(2)
        else:
            fields[key] = value
    return Infotext("\n".join(prompt), "\n".join(negative), fields)


def lora_tags(prompt: str) -> tuple[str, list[tuple[str, str]], list[str]]:
    """``prompt`` without its extra-network tags, the (name, weight text) of each LoRA tag (weight ``"1"``
    when the tag has none), and the other tags (``<hypernet:…>``) as written."""
    loras = [(m.group(2).strip(), (m.group(3) or "1").strip()) for m in _LORA_TAG.finditer(prompt)]
    text = _LORA_TAG.sub("", prompt)
    others = [m.group(0) for m in _OTHER_TAG.finditer(text)]
    text = _OTHER_TAG.sub("", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s*,(\s*,)+", ",", text)
    text = re.sub(r"[ \t]+,", ",", text)
    return text.strip(" ,\n"), loras, others


def studio_sampler(sampler: str | None, schedule: str | None) -> str | None:
    """The studio sampler for A1111's ``Sampler`` and ``Schedule type`` (None when there is none).

    ``DPM++ 2M`` with no schedule (or ``Automatic``) is Karras, as A1111 reads it; an old-style name with the
    schedule as a suffix (``DPM++ 2M Karras``) counts as that schedule. Euler, Euler a, DDIM, UniPC and LCM
    with their own (``Automatic``/``Uniform``) schedule are the studio's; ``Euler``/``Simple`` is the
    flow-matching Euler the studio writes for SD3 and FLUX.
    """
    if not sampler:
        return None
    name = " ".join(sampler.split())
    if not schedule:
        for suffix in _SUFFIXES:
            if name.endswith(f" {suffix}"):
                name, schedule = name[: -len(suffix) - 1], suffix
                break
    if (name, schedule) == FLOW_SCHEDULE:
        return "Euler"
    if name.lower() == "dpm++ 2m" and schedule in (None, "", "Automatic"):
        return "DPM++ 2M Karras"  # A1111's default schedule for DPM++ 2M
    for studio, pair in SCHEDULES.items():
        if pair[0].lower() != name.lower():
            continue
        if schedule == pair[1] or (pair[1] in _PLAIN and schedule in _PLAIN):
            return studio
    return None
