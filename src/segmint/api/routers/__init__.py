"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import admin, inapp, posthog, segment, taxonomy

ROUTERS = [admin.router, segment.router, posthog.router, taxonomy.router, inapp.router]
