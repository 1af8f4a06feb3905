"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import (
    admin,
    inapp,
    posthog,
    segment,
    segment_live,
    segments,
    taxonomy,
    traits,
    web,
    web_auth,
    web_events,
    web_settings,
)

ROUTERS = [admin.router, segment.router, posthog.router, taxonomy.router, segments.router, traits.router,
           inapp.router, segment_live.router, web.router, web_auth.router, web_events.router, web_settings.router]
