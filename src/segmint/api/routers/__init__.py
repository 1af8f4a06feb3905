"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import admin, web

ROUTERS = [admin.router, web.router]
