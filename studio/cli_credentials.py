"""``studio credentials …`` and ``studio verify FILE``: Content Credentials (C2PA) from the shell.

``studio.cli`` registers them with its own error handler, services and settings helpers
(:func:`add_credentials_commands`). ``verify`` reads no database: only the file and the trusted roots.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer


def add_credentials_commands(
    app: typer.Typer,
    handled: Callable[[Any], Any],
    services: Callable[[], Any],
    settings: Callable[[], Any],
    system: Callable[[], Any],
) -> None:
    """Register the ``credentials`` group and ``verify`` on ``app``, wrapped in ``handled``."""
    credentials_app = typer.Typer(
        help="Content Credentials (C2PA): this install's signing keys, what the manifests carry.",
        no_args_is_help=True,
    )
    app.add_typer(credentials_app, name="credentials")

    @credentials_app.command("init")
    @handled
    def credentials_init(
        force: Annotated[
            bool, typer.Option("--force", help="Replace existing keys (the old CA stays trusted).")
        ] = False,
        organisation: Annotated[
            str, typer.Option("--organisation", help="The name in the certificates.")
        ] = "Brand Studio",
    ) -> None:
        """Make an ES256 key and a certificate chain (a CA, then the signing certificate) under
        STUDIO_HOME/credentials; the key file is mode 0600."""
        from studio.provenance.keys import init_credentials, load_credentials

        resolved = settings()
        folder = init_credentials(resolved, organisation=organisation, force=force)
        typer.echo(f"made {folder}/chain.pem, {folder}/ca.pem and {folder}/signer.key (mode 0600)")
        if resolved.c2pa_cert is not None:
            typer.echo(
                "note: STUDIO_C2PA_CERT/STUDIO_C2PA_KEY are set: the studio signs with those, not these"
            )
        else:
            typer.echo(f"signing as: {load_credentials(resolved).subject}")

    @credentials_app.command("show")
    @handled
    def credentials_show() -> None:
        """Which certificate signs, where it comes from and until when it is valid."""
        from cryptography import x509

        from studio.provenance.keys import load_credentials

        creds = load_credentials(settings())
        signer = x509.load_pem_x509_certificates(creds.chain_pem)[0]
        typer.echo(f"signing as: {creds.subject}")
        typer.echo(f"from: {creds.source}")
        typer.echo(f"valid until: {signer.not_valid_after_utc:%Y-%m-%d}")

    @credentials_app.command("include-prompt")
    @handled
    def credentials_include_prompt(
        slug: str, setting: Annotated[str, typer.Argument(help="on or off")]
    ) -> None:
        """Whether the brand's manifests carry the prompts (off by default: prompts can be confidential).
        brand.toml holds the same setting (credentials_include_prompt); studio brands sync applies it."""
        if setting not in ("on", "off"):
            raise typer.BadParameter("on or off", param_hint="SETTING")
        services().credentials.set_include_prompt(system(), slug, setting == "on")
        typer.echo(f"{slug}: prompts {'in' if setting == 'on' else 'left out of'} new manifests")

    @app.command("verify")
    @handled
    def verify(
        file: Path,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the SDK's manifest store as JSON.")
        ] = False,
    ) -> None:
        """Read FILE's Content Credentials with the C2PA SDK: the manifest chain, the validation state and
        whether the pixels match. Exit 0 when they validate, 1 otherwise ("no credentials" included)."""
        from studio.errors import NotFoundError
        from studio.provenance.keys import trust_anchors
        from studio.provenance.verify import describe, verify_png

        if not file.is_file():
            raise NotFoundError(f"{file}: no such file")
        checked = verify_png(file.read_bytes(), trust_anchors(settings()))
        if as_json:
            typer.echo(json.dumps(checked.raw, indent=2))
        else:
            typer.echo(f"file: {file}")
            for line in describe(checked):
                typer.echo(line)
        if not checked.valid:
            raise typer.Exit(1)
