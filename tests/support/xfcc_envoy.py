"""x-forwarded-client-cert as Envoy 1.40 writes it, for tests: an encoder written from Envoy's rules
(ConnectionManagerUtility::mutateXfccRequestHeader) and checked against a real Envoy in
tests/e2e/test_e2e_identity.py.

With SANITIZE_SET or APPEND_FORWARD and set_current_client_cert_details {cert, subject, uri, dns},
one element is ``Hash=<sha256 hex of the DER>;Cert="<url-encoded PEM>";Subject="<RFC 2253 DN>";``
``URI=<san>`` per URI SAN (``URI=`` when none), then ``DNS=<san>`` per DNS SAN. Only the DN is
escaped (by BoringSSL's RFC 2253 printer); URI and DNS SANs are written raw.
"""
from __future__ import annotations

import hashlib
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

RFC2253_SPECIAL = ',+"\\<>;'


def rfc2253_value(text: str) -> str:
    """An attribute value as X509_NAME_print_ex(XN_FLAG_RFC2253) prints it: specials escaped with a
    backslash, control characters and every byte of a non-ASCII character as \\XX, a leading '#'
    or space and a trailing space escaped."""
    out = []
    for index, char in enumerate(text):
        code = ord(char)
        if code > 0x7F:
            out.extend(f"\\{byte:02X}" for byte in char.encode("utf-8"))
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\{code:02X}")
        elif char in RFC2253_SPECIAL or (index == 0 and char in "# ") or (index == len(text) - 1 and char == " "):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def subject_of(common_name: str) -> str:
    return f"CN={rfc2253_value(common_name)}"


def element(certificate: x509.Certificate, *, cert: bool = True, subject: bool = True,
            uri: bool = True, dns: bool = True) -> str:
    """The element Envoy writes for a client that presented this certificate (CN-only subject)."""
    der = certificate.public_bytes(Encoding.DER)
    pairs = [f"Hash={hashlib.sha256(der).hexdigest()}"]
    if cert:
        pem = certificate.public_bytes(Encoding.PEM).decode()
        pairs.append(f'Cert="{urllib.parse.quote(pem, safe="")}"')
    if subject:
        (common_name,) = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        pairs.append(f'Subject="{subject_of(common_name.value)}"')
    uris, dns_names = sans_of(certificate)
    if uri:
        pairs.extend(f"URI={value}" for value in uris) if uris else pairs.append("URI=")
    if dns:
        pairs.extend(f"DNS={value}" for value in dns_names)
    return ";".join(pairs)


def sans_of(certificate: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    return (tuple(names.get_values_for_type(x509.UniformResourceIdentifier)),
            tuple(names.get_values_for_type(x509.DNSName)))
