"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import (
    admin,
    campaigns,
    inapp,
    posthog,
    segment,
    segments,
    taxonomy,
    tracking,
    traits,
    web,
    web_auth,
    web_events,
    web_settings,
)

ROUTERS = [admin.router, segment.router, posthog.router, taxonomy.router, segments.router, traits.router,
           inapp.router, web.router, web_auth.router, web_events.router, web_settings.router,
           campaigns.router, tracking.router]
