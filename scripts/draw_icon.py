"""Draws ``assets/icon.png``, the browser tab's icon: an eye, like Material's "visibility".

The app ships it instead of naming ``:material/visibility:``, which Streamlit fetches from
fonts.gstatic.com on every page load (and which fails offline). Run from the repository root:

    python scripts/draw_icon.py
"""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

SIZE = 256  # drawn 4x larger, then reduced to 64 px for smooth edges
INK = (49, 51, 63, 255)  # Streamlit's text colour
RED = (255, 75, 75, 255)  # Streamlit's primary colour


def main() -> None:
    im = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    cx = cy = SIZE / 2
    width, height = 232, 78  # the eye's corners and its half-height
    r = (width * width / 4 + height * height) / (2 * height)  # a circle through both corners and the top
    half = math.asin((width / 2) / r)
    angles = [-half + 2 * half * i / 200 for i in range(201)]
    top = [(cx + r * math.sin(a), cy - (r * math.cos(a) - (r - height))) for a in angles]
    bottom = [(x, 2 * cy - y) for x, y in reversed(top)]
    d.polygon(top + bottom, fill=INK)
    d.polygon([(cx + (x - cx) * 0.86, cy + (y - cy) * 0.74) for x, y in top + bottom], fill=(255, 255, 255, 255))
    d.ellipse((cx - 50, cy - 50, cx + 50, cy + 50), fill=RED)
    d.ellipse((cx - 22, cy - 22, cx + 22, cy + 22), fill=INK)
    im.resize((64, 64), Image.LANCZOS).save("assets/icon.png", optimize=True)


if __name__ == "__main__":
    main()
