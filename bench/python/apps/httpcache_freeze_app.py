# SPDX-License-Identifier: MIT
"""The httpcache_app variant with HTTPCache.attach(app, freeze_gc=True): gc.freeze() once started."""

from httpcache import HTTPCache

from .httpcache_app import app

HTTPCache.attach(app, freeze_gc=True)
