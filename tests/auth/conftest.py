"""The live server and Chromium fixtures of the dashboard's browser tests, shared here."""

from tests.dashboard.conftest import chromium_path, live_server, screenshot_dir

__all__ = ["chromium_path", "live_server", "screenshot_dir"]
