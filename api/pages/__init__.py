"""HTML pages for people (the buyer's verification page, a site's month for its manager), beside
the JSON API under /v1."""

from api.pages.router import router
from api.pages.site_page import router as site_router

router.include_router(site_router)

__all__ = ["router"]
