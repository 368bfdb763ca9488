"""`framegram serve`: search and browse an index from a web page, with a JSON API beside it."""

from framegram.serve.app import DEFAULT_UPLOAD_LIMIT, create_app

__all__ = ["DEFAULT_UPLOAD_LIMIT", "create_app"]
