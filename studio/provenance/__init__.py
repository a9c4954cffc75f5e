"""Content Credentials (C2PA): every PNG the studio writes is signed with the official SDK (``c2pa-python``).

* :mod:`.keys`      this install's ES256 chain (``studio credentials init``) or an organisation's
* :mod:`.manifest`  the manifest definitions: created, edited, approved; the XMP packet
* :mod:`.sign`      signing PNG bytes (``sign_generated``, ``sign_edited``, ``sign_approved``)
* :mod:`.verify`    reading them back (``verify_png``, ``describe``)

Imported by services (never by the UI); imports neither the database nor torch.
"""
