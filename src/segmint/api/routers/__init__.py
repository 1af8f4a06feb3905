"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import admin, inapp, posthog, segment, taxonomy, web

ROUTERS = [admin.router, segment.router, posthog.router, taxonomy.router, inapp.router, web.router]
