"""x-forwarded-client-cert, read exactly as Envoy writes it.

Envoy (``forward_client_cert_details: SANITIZE_SET`` or ``APPEND_FORWARD``) writes one element
per proxy, elements joined by ``,``, an element's ``Key=value`` pairs joined by ``;``:
``By=<uri>`` (one per URI SAN of its own certificate), ``Hash=<sha256 hex>``, then what
``set_current_client_cert_details`` asks for: ``Subject="<DN>"`` (always quoted, the DN in
RFC 2253 form, whose own escapes ``\\"``, ``\\,``, ``\\;`` and ``\\\\`` keep any quote inside
escaped), ``URI=<san>`` (one per URI SAN, ``URI=`` when there is none), ``Cert="<url-encoded
PEM>"``, ``Chain="..."`` and ``DNS=<san>`` (one per DNS SAN). URI and DNS values are written
raw: a SAN holding ``;`` or ``,`` reads as more pairs or another element. So when the element
carries ``Cert``, the SANs are read from that certificate and the pairs must agree with it,
and its ``Hash`` must be the certificate's; without ``Cert`` the header is believed only when
the policy says so (``require_cert: false``).

Only the last element is read: the one the proxy next to the sidecar wrote about its own client.
Anything Envoy would not have written is refused, never half-read.
"""
from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

SINGLE = frozenset({"hash", "subject", "cert", "chain"})  # at most once in an element
REPEATED = frozenset({"by", "uri", "dns"})
MAX_HEADER = 64 * 1024


class XfccError(ValueError):
    """The header is not what Envoy writes; ``reason`` goes to the audit record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClientCertificate:
    uris: tuple[str, ...]
    dns: tuple[str, ...]
    subject: str

    @property
    def sans(self) -> tuple[str, ...]:
        return self.uris + self.dns


def parse(header: str, require_cert: bool = True) -> ClientCertificate | None:
    """The client certificate of the last element; None for no header; XfccError when malformed."""
    if not header:
        return None
    if len(header) > MAX_HEADER:
        raise XfccError("xfcc_malformed")
    pairs = split_elements(header)[-1]
    fields = _fields(pairs)
    if "hash" not in fields:
        raise XfccError("xfcc_malformed")  # every element Envoy writes has the certificate's hash
    subject = fields.get("subject", [""])[0]
    uris = tuple(v for v in fields.get("uri", []) if v)
    dns = tuple(fields.get("dns", []))
    if "cert" in fields:
        uris, dns = _sans_from_certificate(fields["cert"][0], fields["hash"][0], uris, dns)
    elif require_cert:
        raise XfccError("xfcc_without_cert")
    if not uris and not dns and not subject:
        return None
    return ClientCertificate(uris, dns, subject)


def split_elements(header: str) -> list[list[tuple[str, str]]]:
    """Elements, each a list of (key, value); quoted values unquoted, their content kept as is."""
    elements: list[list[tuple[str, str]]] = [[]]
    index, length = 0, len(header)
    while True:
        key, index = _key(header, index)
        value, index = _value(header, index)
        elements[-1].append((key, value))
        if index == length:
            return elements
        if header[index] == ",":
            elements.append([])
        index += 1  # past ';' or ','


def _key(header: str, index: int) -> tuple[str, int]:
    end = header.find("=", index)
    key = header[index:end] if end >= 0 else ""
    if not key or any(ch in key for ch in ',;"\\') or key.strip() != key:
        raise XfccError("xfcc_malformed")
    return key.lower(), end + 1


def _value(header: str, index: int) -> tuple[str, int]:
    """A quoted value ends at the first quote no backslash escapes; a bare one at ';' or ','."""
    if index < len(header) and header[index] == '"':
        start, index = index + 1, index + 1
        while index < len(header) and header[index] != '"':
            index += 2 if header[index] == "\\" else 1
        if index >= len(header):
            raise XfccError("xfcc_malformed")  # no closing quote
        value, index = header[start:index], index + 1
        if index < len(header) and header[index] not in ",;":
            raise XfccError("xfcc_malformed")  # text after the closing quote
        return value, index
    end = index
    while end < len(header) and header[end] not in ",;":
        if header[end] == '"':
            raise XfccError("xfcc_malformed")  # a quote inside a bare value: not Envoy's writing
        end += 1
    return header[index:end], end


def _fields(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        if key not in SINGLE and key not in REPEATED:
            raise XfccError("xfcc_malformed")
        fields.setdefault(key, []).append(value)
        if key in SINGLE and len(fields[key]) > 1:
            raise XfccError("xfcc_malformed")
    return fields


def _sans_from_certificate(cert: str, digest: str, uris: tuple[str, ...],
                           dns: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The SANs of the certificate itself, which must match the pairs and the hash."""
    try:
        certificate = x509.load_pem_x509_certificate(urllib.parse.unquote_to_bytes(cert))
        der = certificate.public_bytes(Encoding.DER)
        try:
            names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            names = None
        real_uris = tuple(names.get_values_for_type(x509.UniformResourceIdentifier)) if names else ()
        real_dns = tuple(names.get_values_for_type(x509.DNSName)) if names else ()
    except (ValueError, TypeError):
        raise XfccError("xfcc_malformed") from None
    if hashlib.sha256(der).hexdigest() != digest.lower():
        raise XfccError("xfcc_cert_mismatch")
    if (real_uris, real_dns) != (uris, dns):
        raise XfccError("xfcc_cert_mismatch")  # a SAN with ';' or ',' split into pairs of its own
    return real_uris, real_dns

