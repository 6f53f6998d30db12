"""The one container image every kfp-interop component runs on: tag = package version,
so the image and the code it runs never drift (see ``Dockerfile``)."""

from kfp_interop import __version__

IMAGE_REPOSITORY = "ghcr.io/kfp-interop/kfp-interop"
IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"

# kfp is part of the image; installing it again per task costs ~2 s locally.
COMPONENT_OPTIONS = {"base_image": IMAGE, "install_kfp_package": False}
