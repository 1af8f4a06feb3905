"""Routers per resource; each module exposes `router`, registered in order here."""

from segmint.api.routers import (
    admin,
    campaign_reports,
    campaigns,
    inapp,
    posthog,
    segment,
    segment_analysis,
    segment_live,
    segments,
    taxonomy,
    tracking,
    traits,
    web,
    web_auth,
    web_campaigns,
    web_events,
    web_segments,
    web_settings,
    web_users,
)

ROUTERS = [admin.router, segment.router, posthog.router, taxonomy.router, segments.router, traits.router,
           inapp.router, segment_analysis.router, segment_live.router, campaigns.router, campaign_reports.router,
           tracking.router, web.router, web_auth.router, web_events.router, web_settings.router, web_segments.router,
           web_users.router, web_campaigns.router]
