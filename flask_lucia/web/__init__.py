"""The request side every feature shares: the hook (cookie or bearer token to
``current_user``), cookies out, CSRF, decorators, the ``lucia`` blueprint and the core views,
pages and notices, and the sign-in pipeline features register stages with."""
