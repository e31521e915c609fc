"""Package layout: the three top-level folders map to import names that cannot clash.

Metadata lives in setup.cfg; only the folder mapping is computed here, because setuptools
silently drops unlisted sub-packages of a mapped folder (see README, "Packaging").
"""

from setuptools import find_packages, setup

PACKAGE_DIR = {"kapi": "kapi", "kapi_plugins": "plugins", "kapi_certs": "certs"}
PACKAGES = [
    f"{name}.{sub}" if sub else name
    for name, folder in PACKAGE_DIR.items()
    for sub in ["", *find_packages(folder)]
]

setup(package_dir=PACKAGE_DIR, packages=PACKAGES)
