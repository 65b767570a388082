"""The image page's cached model and results.

The model is cached once per (name, configured device) and shared by every session. Results are
keyed on the image's SHA-256 (a primitive); the bytes ride along as ``_data``, which Streamlit
leaves out of the key, so a 20 MB upload is never hashed twice. As for text (attnviz.ui.models),
the ``device`` of a result key is where the shared model runs now: the CPU after a GPU
out-of-memory fallback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st
from PIL import Image

from attnviz.figures.overlay import display_image
from attnviz.image.attribution import PixelMap, gradcam, integrated_gradients
from attnviz.image.decoding import open_image
from attnviz.image.extraction import ImageAttention, image_attention
from attnviz.image.loading import ImageModel, load_image_model
from attnviz.ui.models import configured_device

#: Uploads are decoded at most this large: enough for the display, fast for a 12 MP JPEG.
DECODE_SIDE = 1024


@dataclass(frozen=True)
class ImageRun:
    attention: ImageAttention
    shown: Image.Image  # what the browser gets (<= 512 px a side)
    original_size: tuple[int, int]  # (width, height) as uploaded, after EXIF rotation


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_resource(show_spinner="Loading the image model…", max_entries=2)
def image_model(name: str, device: str) -> ImageModel:
    return load_image_model(name, device=device)


def shared_image_model(name: str) -> ImageModel:
    """The one shared image model ``name``, wherever it runs now."""
    return image_model(name, configured_device())


def _decode(data: bytes) -> Image.Image:
    return open_image(data, max_side=DECODE_SIDE)


@st.cache_data(show_spinner="Running the image model…", max_entries=16)
def cached_image_run(name: str, device: str, key: str, _data: bytes) -> ImageRun:
    image = _decode(_data)
    return ImageRun(image_attention(shared_image_model(name), image), display_image(image), image.size)


@st.cache_data(show_spinner="Computing Grad-CAM and Integrated Gradients…", max_entries=32)
def cached_gradient_maps(
    name: str, device: str, key: str, target: str, _image: Image.Image
) -> tuple[PixelMap | None, PixelMap]:
    """(Grad-CAM or None when the model has no convolution grid, Integrated Gradients).

    ``_image`` is the run's model-input image (``ImageRun.attention.image``): the upload is not
    decoded a second time, and the model sees exactly the pixels the attention came from.
    """
    model = shared_image_model(name)
    image = _image
    cam = gradcam(model, image, target) if model.has_conv else None
    return cam, integrated_gradients(model, image, target)
