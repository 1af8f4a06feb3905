"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import admin, posthog, segment, taxonomy, traits, web

ROUTERS = [admin.router, segment.router, posthog.router, taxonomy.router, traits.router, web.router]
