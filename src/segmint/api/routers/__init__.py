"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import admin, segments, taxonomy

ROUTERS = [admin.router, taxonomy.router, segments.router]
