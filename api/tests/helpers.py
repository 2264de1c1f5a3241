"""Paths the API tests share (imported as `helpers`, never from conftest)."""

import os

from testkit import paths

API_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = str(paths.PHOTOS)
