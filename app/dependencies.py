"""Request dependencies for the app-wide objects built in the lifespan."""

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.security import PhoneVault


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_vault(request: Request) -> PhoneVault:
    """The phone vault (encryption + blind index) built from the configured keys."""
    vault: PhoneVault = request.app.state.vault
    return vault


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
VaultDep = Annotated[PhoneVault, Depends(get_vault)]
