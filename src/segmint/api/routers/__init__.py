"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import admin, taxonomy

ROUTERS = [admin.router, taxonomy.router]
