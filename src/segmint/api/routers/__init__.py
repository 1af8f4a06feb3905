"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import admin, taxonomy, traits

ROUTERS = [admin.router, taxonomy.router, traits.router]
