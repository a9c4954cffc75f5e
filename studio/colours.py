"""The toy world's named colours as hex: the table that brand.toml palettes may refer to by name.

The values equal ``studio.toyworld.world.FG_COLOURS`` / ``BACKGROUNDS`` (a unit test keeps them equal); this
module has no heavy imports so that parsing a brand file stays light.
"""

from __future__ import annotations

#: Foreground (shape) colours of the embedded toy world, as ``#rrggbb``.
FOREGROUND_COLOURS: dict[str, str] = {
    "red": "#dc2828",
    "green": "#28aa3c",
    "blue": "#2850e6",
    "yellow": "#f5dc28",
    "orange": "#f58719",
    "purple": "#8c37be",
}

#: Background colours of the embedded toy world, as ``#rrggbb``.
BACKGROUND_COLOURS: dict[str, str] = {
    "white": "#ffffff",
    "black": "#000000",
    "gray": "#808080",
    "teal": "#008080",
}

#: Every named colour (a brand.toml palette may use these names instead of hex values).
NAMED_COLOURS: dict[str, str] = {**FOREGROUND_COLOURS, **BACKGROUND_COLOURS}


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` → ``(r, g, b)``; the value must already be normalised."""
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
