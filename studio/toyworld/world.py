"""The toy world: deterministic images of one shape on a plain background, with captions and edge maps.

Everything here is a pure function of its arguments (and of a seed where randomness is involved), so the
training set, the held-out evaluation grid and the tests are all reproducible.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
SUPERSAMPLE = 4

FG_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 230),
    "yellow": (245, 220, 40),
    "orange": (245, 135, 25),
    "purple": (140, 55, 190),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "teal": (0, 128, 128),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# Where the shape's area centroid sits (x, y) in a 64x64 image.
POSITIONS: dict[str, tuple[int, int]] = {
    "left": (18, 32),
    "center": (32, 32),
    "right": (46, 32),
    "top": (32, 18),
    "bottom": (32, 46),
}
SIZES: tuple[int, ...] = (8, 10, 12)  # the shape's "radius" in pixels
JITTER = 2  # +- pixels around the position anchor

COLOUR_NAMES = tuple(FG_COLOURS)
BACKGROUND_NAMES = tuple(BACKGROUNDS)
POSITION_NAMES = tuple(POSITIONS)

CANONICAL = "a {colour} {shape} on a {background} background, {position}"

# (template, weight). Forms that leave out the background and/or the position teach the model what to do
# when a prompt leaves them open (and make negative prompts meaningful).
CAPTION_FORMS: tuple[tuple[str, float], ...] = (
    (CANONICAL, 0.30),
    ("a {colour} {shape}, {position}, on a {background} background", 0.07),
    ("{position}, a {colour} {shape} on a {background} background", 0.07),
    ("a {colour} {shape} at the {position} of a {background} background", 0.07),
    ("a {background} background with a {colour} {shape} in the {position}", 0.07),
    ("the {colour} {shape} is {position} on the {background} background", 0.05),
    ("a {colour} {shape} on a {background} background", 0.08),
    ("a {colour} {shape}, {position}", 0.08),
    ("a {colour} {shape} in the {position}", 0.04),
    ("a {colour} {shape}", 0.06),
    ("a {background} background", 0.03),
    ("a {shape}, {position}", 0.03),
    ("{colour}", 0.02),
    ("{position}", 0.03),
)


@dataclass(frozen=True)
class Scene:
    colour: str
    shape: str
    background: str
    position: str
    size: int = 10
    dx: int = 0
    dy: int = 0

    @property
    def centroid(self) -> tuple[int, int]:
        x, y = POSITIONS[self.position]
        return x + self.dx, y + self.dy

    @property
    def combo(self) -> tuple[str, str, str, str]:
        return (self.colour, self.shape, self.background, self.position)

    def caption(self, form: str = CANONICAL) -> str:
        return form.format(
            colour=self.colour, shape=self.shape, background=self.background, position=self.position
        )


def canonical_caption(colour: str, shape: str, background: str, position: str) -> str:
    return CANONICAL.format(colour=colour, shape=shape, background=background, position=position)


def all_combos() -> list[tuple[str, str, str, str]]:
    return [
        (c, s, b, p) for c in COLOUR_NAMES for s in SHAPES for b in BACKGROUND_NAMES for p in POSITION_NAMES
    ]


def is_held_out(combo: tuple[str, str, str, str]) -> bool:
    """One combination in six is never used in training: the evaluation prompts come from these."""
    c, s, b, p = combo
    key = (
        COLOUR_NAMES.index(c) + 2 * SHAPES.index(s) + 3 * BACKGROUND_NAMES.index(b) + POSITION_NAMES.index(p)
    )
    return key % 6 == 0


def held_out_combos() -> list[tuple[str, str, str, str]]:
    return [c for c in all_combos() if is_held_out(c)]


def training_combos() -> list[tuple[str, str, str, str]]:
    return [c for c in all_combos() if not is_held_out(c)]


def random_scene(rng: random.Random, combos: list[tuple[str, str, str, str]] | None = None) -> Scene:
    combo = rng.choice(combos if combos is not None else training_combos())
    return Scene(
        *combo,
        size=rng.choice(SIZES),
        dx=rng.randint(-JITTER, JITTER),
        dy=rng.randint(-JITTER, JITTER),
    )


def scene_for_seed(seed: int) -> Scene:
    """The training scene number `seed` (deterministic)."""
    return random_scene(random.Random(seed))


def random_caption(scene: Scene, rng: random.Random) -> str:
    forms, weights = zip(*CAPTION_FORMS, strict=True)
    return scene.caption(rng.choices(forms, weights=weights)[0])


FILLER_LETTERS = (3, 16)


def with_filler_word(caption: str, rng: random.Random) -> str:
    """`caption` with a made-up word of 3-16 letters before or after it, like a brand's trigger word.

    Words outside the vocabulary tokenize letter by letter, so a filler of n letters takes n tokens: it moves
    the scene's words past token 16 (before) or fills the window's tail (after). Trained this way, the model
    reads the whole 32-token window and ignores a word it does not know, wherever the brand puts it.
    """
    word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(*FILLER_LETTERS)))
    return f"{word}, {caption}" if rng.random() < 0.5 else f"{caption}, {word}"


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if shape == "square":
        # Circumscribes the circle of the same size: the corners reach 0.41 r beyond it (3-5 px, about a
        # latent cell), enough for a model working on a 16x16 latent grid to tell the two apart.
        h = r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":
        # Upward triangle, height 2r, half base 1.15r, with its area centroid at (cx, cy).
        height, half = 2.0 * r, 1.15 * r
        return [(cx, cy - 2 * height / 3), (cx + half, cy + height / 3), (cx - half, cy + height / 3)]
    return None


def render(scene: Scene, size: int = SIZE) -> Image.Image:
    """Draw the scene as an RGB image (anti-aliased by drawing 4x larger and box-filtering down)."""
    k = SUPERSAMPLE * size / SIZE
    big = Image.new("RGB", (round(SIZE * k),) * 2, BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(big)
    cx, cy = scene.centroid
    # pixel centres: pixel i covers [i, i+1); its centre is at i + 0.5
    cx, cy, r = (cx + 0.5) * k, (cy + 0.5) * k, scene.size * k
    colour = FG_COLOURS[scene.colour]
    poly = _shape_polygon(scene.shape, cx, cy, r)
    if poly is None:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        draw.polygon(poly, fill=colour)
    return big.resize((size, size), Image.BOX)


def render_array(scene: Scene) -> np.ndarray:
    return np.asarray(render(scene), dtype=np.uint8)


def canny(image: Image.Image | np.ndarray, low: int = 100, high: int = 200) -> Image.Image:
    """Canny edge map, 3 channels, white edges on black (as controlnet-aux's CannyDetector makes it)."""
    import cv2  # opencv comes with controlnet-aux

    arr = np.asarray(image, dtype=np.uint8)
    edges = cv2.Canny(arr, low, high)
    return Image.fromarray(np.stack([edges] * 3, axis=-1))


def edge_map(scene: Scene) -> Image.Image:
    return canny(render(scene))
