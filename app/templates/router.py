"""Templates routes."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/templates", tags=["Templates"])
