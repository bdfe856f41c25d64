"""Campaigns routes."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/campaigns", tags=["Campaigns"])
