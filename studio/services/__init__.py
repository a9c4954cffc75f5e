"""Services: one module per capability; they own transactions and permission checks.

Build them all with :func:`studio.services.container.build_services` (``Services.users``, ``.brands``,
``.audit``). Every method takes the calling :class:`~studio.services.views.Actor` first
(``Actor.user(request.username)`` in the UI, ``SYSTEM`` in the CLI), reads that actor's roles from the
database, and returns frozen views from :mod:`studio.services.views` (never ORM objects). Errors come from
:mod:`studio.errors`: ValidationError (bad input, names the field/file), NotFoundError, PermissionDeniedError,
ConflictError, AuthenticationError. Brand files and their validation live in
:mod:`studio.services.brand_files` (``spec_from_mapping`` also validates UI forms).
"""
