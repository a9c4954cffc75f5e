"""Signing keys for Content Credentials: this install's own chain, or an organisation's.

``studio credentials init`` (and the app's first start, when there are none) makes, with ``cryptography``:

* ``credentials/ca.pem``      a CA certificate (its key is thrown away once the signing certificate is made);
* ``credentials/chain.pem``   the signing certificate, then the CA (the chain C2PA manifests carry);
* ``credentials/signer.key``  the signing certificate's ES256 (P-256) private key, mode 0600.

The folder is under ``STUDIO_HOME``, outside every folder the web app serves. An organisation's own chain and
key are given with ``STUDIO_C2PA_CERT`` / ``STUDIO_C2PA_KEY`` (and its root with ``STUDIO_C2PA_TRUST``).
The signing certificate carries what C2PA validators require (C2PA 2.1, "Certificate profile"): version 3,
not a CA, key usage digitalSignature (critical), extended key usage emailProtection and documentSigning,
subject and authority key identifiers, an issuer other than itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from studio.config import Settings
from studio.errors import StudioError

CA_FILE, CHAIN_FILE, KEY_FILE = "ca.pem", "chain.pem", "signer.key"
#: earlier CAs (moved here by ``init --force``) stay trusted, so older images still verify as this studio's
PREVIOUS_DIR = "previous"
#: id-kp-documentSigning (RFC 9336), one of the extended key usages C2PA accepts
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
CA_YEARS, SIGNER_YEARS = 30, 20  # no timestamp authority offline: the chain must outlive the images


class CredentialsError(StudioError):
    """The signing credentials are missing, unreadable or do not fit together."""


@dataclass(frozen=True)
class SigningCredentials:
    """PEM text of the chain (signing certificate first) and its private key, where they came from, and the
    roots a verifier of this studio trusts."""

    chain_pem: bytes
    key_pem: bytes = b""
    anchors_pem: bytes = b""
    source: str = ""

    @property
    def subject(self) -> str:
        """The signing certificate's common name (and organisation)."""
        return describe_name(x509.load_pem_x509_certificates(self.chain_pem)[0].subject)


def credentials_dir(settings: Settings) -> Path:
    """``STUDIO_HOME/credentials``: never inside a served folder."""
    return settings.home / "credentials"


def describe_name(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    org = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    text = str(common[0].value) if common else name.rfc4514_string()
    return f"{text} ({org[0].value})" if org and org[0].value != text else text


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def make_chain(organisation: str = "Brand Studio") -> tuple[bytes, bytes, bytes]:
    """A new CA and ES256 signing certificate: (CA PEM, chain PEM = signer then CA, signer key PEM)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{organisation} Content Credentials CA", organisation)
    no_usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement"), False
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
                **no_usage,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organisation} signer", organisation))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365 * SIGNER_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
                **no_usage,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem), signer.public_bytes(pem) + ca.public_bytes(pem), key_pem


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (a temporary file made 0600, then renamed)."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def init_credentials(settings: Settings, *, organisation: str = "Brand Studio", force: bool = False) -> Path:
    """Make this install's CA, signing certificate and key under :func:`credentials_dir`; returns the folder.

    Existing credentials are kept unless ``force`` (then the old CA moves to ``previous/``, still trusted)."""
    folder = credentials_dir(settings)
    present = [name for name in (CA_FILE, CHAIN_FILE, KEY_FILE) if (folder / name).exists()]
    if present and not force:
        raise CredentialsError(f"{folder} already holds {', '.join(present)}; --force makes new ones")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca_pem, chain_pem, key_pem = make_chain(organisation)
    if (folder / CA_FILE).is_file():
        previous = folder / PREVIOUS_DIR
        previous.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        os.replace(folder / CA_FILE, previous / f"ca-{stamp}.pem")
    _write_private(folder / KEY_FILE, key_pem, 0o600)  # the key first: a chain never names a missing key
    _write_private(folder / CHAIN_FILE, chain_pem, 0o644)
    _write_private(folder / CA_FILE, ca_pem, 0o644)
    return folder


def _read(path: Path, what: str, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CredentialsError(f"{what} {path} is missing ({variable})") from None
    except OSError as error:
        raise CredentialsError(f"{what} {path} cannot be read ({variable}): {error.strerror}") from None


def check_pair(chain_pem: bytes, key_pem: bytes, where: str) -> None:
    """The chain parses, its first certificate is valid now and ``key_pem`` is its ES256 key."""
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise CredentialsError(f"{where}: the certificate chain is not PEM certificates") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CredentialsError(f"{where}: the private key is not an unencrypted PEM key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise CredentialsError(f"{where}: the private key must be an ES256 (P-256) key")
    signer = certs[0]
    if signer.public_key() != key.public_key():
        raise CredentialsError(f"{where}: the private key does not belong to the signing certificate")
    if signer.not_valid_after_utc < dt.datetime.now(dt.UTC):
        raise CredentialsError(
            f"{where}: the signing certificate expired on {signer.not_valid_after_utc:%Y-%m-%d}"
        )


def trust_anchors(settings: Settings) -> bytes:
    """PEM roots a verifier of this studio trusts: this install's CAs (current and previous) and
    ``STUDIO_C2PA_TRUST``; empty when none exist."""
    folder = credentials_dir(settings)
    parts = [folder / CA_FILE, *sorted((folder / PREVIOUS_DIR).glob("*.pem"))]
    anchors = b"".join(p.read_bytes() for p in parts if p.is_file())
    if settings.c2pa_trust is not None:
        anchors += _read(settings.c2pa_trust, "the trusted roots", "STUDIO_C2PA_TRUST")
    return anchors


def load_credentials(settings: Settings) -> SigningCredentials:
    """The organisation's chain and key when ``STUDIO_C2PA_CERT``/``KEY`` are set, else this install's;
    CredentialsError naming the file when one is missing, unreadable or does not fit."""
    if settings.c2pa_cert is not None and settings.c2pa_key is not None:
        chain = _read(settings.c2pa_cert, "the signing certificate chain", "STUDIO_C2PA_CERT")
        key = _read(settings.c2pa_key, "the signing key", "STUDIO_C2PA_KEY")
        where = f"STUDIO_C2PA_CERT/STUDIO_C2PA_KEY ({settings.c2pa_cert.name}, {settings.c2pa_key.name})"
    else:
        folder = credentials_dir(settings)
        hint = "`studio credentials init --force` makes new ones"
        chain = _read(folder / CHAIN_FILE, "the signing certificate chain", hint)
        key = _read(folder / KEY_FILE, "the signing key", hint)
        where = str(folder)
    check_pair(chain, key, where)
    return SigningCredentials(chain, key, trust_anchors(settings), where)


def ensure_credentials(settings: Settings) -> tuple[SigningCredentials, bool]:
    """(credentials, made now?): this install's are made when neither an organisation's are set nor any
    file of ours exists; a half set (a chain without its key) is an error, never silently replaced.
    Processes starting at once on a shared data folder (the app, workers) make them only once."""
    folder = credentials_dir(settings)
    if settings.c2pa_cert is None and not _any_of_ours(folder):
        with _making(folder):
            made = not _any_of_ours(folder)  # another process may have made them while we waited
            if made:
                init_credentials(settings)
        return load_credentials(settings), made
    return load_credentials(settings), False


def _any_of_ours(folder: Path) -> bool:
    return any((folder / name).exists() for name in (CA_FILE, CHAIN_FILE, KEY_FILE))


@contextlib.contextmanager
def _making(folder: Path, wait_s: float = 30.0) -> Iterator[None]:
    """Hold ``folder/.making`` (created exclusively) while the keys are made; a lock older than
    ``wait_s`` is a crashed process's and is taken over."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".making"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - lock.stat().st_mtime > wait_s:
                    lock.unlink()
                    continue
            if time.monotonic() > deadline:
                raise CredentialsError(f"{lock} is held by another process; remove it if none runs") from None
            time.sleep(0.05)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
