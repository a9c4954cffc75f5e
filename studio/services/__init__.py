"""Services: one module per capability; they own transactions and permission checks.

Build them all with :func:`studio.services.container.build_services`.
"""
