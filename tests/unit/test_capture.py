"""The capture: whole requests as request records, secrets and personal data redacted by default,
the decision attached, readable by `extproc learn` as they are."""
from __future__ import annotations

import json
import random

import orjson
import yaml

from extproc import cli
from extproc.config.compile import parse_policy
from extproc.core.records import request_from_record
from extproc.core.request import Request
from extproc.core.transaction import Transaction
from extproc.observability.audit import AuditWriter
from extproc.observability.capture import CaptureWriter, Entry, record
from extproc.observability.scrub import mask
from tests.support.form_traffic import shop_traffic

POLICY = parse_policy("version: 1\ndefaults:\n  layers:\n    attack: {}\n", "capture test")
FORM = ("content-type", "application/x-www-form-urlencoded")


def decided(method: str, target: str, headers=(), body: bytes = b"") -> tuple[Request, object]:
    request = Request(method, target, headers=tuple(headers), has_body=bool(body), source_ip="198.51.100.7",
                      request_id="req-1")
    transaction = Transaction(POLICY, request)
    decision = transaction.on_headers() or transaction.on_body(body)
    return request, decision


def captured(request, decision, redact: bool = True) -> dict:
    entry = Entry(0.0, decision, request.method, request.path, request.headers, request.body, request.has_body,
                  request.source_ip, "digest", redact)
    return orjson.loads(orjson.dumps(record(entry)))


def test_credentials_go_whole_and_personal_data_keeps_only_its_shape():
    request, decision = decided(
        "POST", "/tienda/registro.jsp?sessionid=S3CR3T&q=zapatos",
        headers=[("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmEifQ.c2lnbmF0dXJl"),
                 ("cookie", "JSESSIONID=1F767F17239C9B670A39E9B10C3825F4; tema=oscuro"), ("x-api-key", "k-991"),
                 ("user-agent", "Mozilla/5.0"), FORM, ("content-length", "99")],
        body=b"login=ana7&password=Tr0ub4dor%263&email=ana.pe%F1a%40correo.es&ntc=4539+1488+0343+6467&nombre=Ana")
    line = captured(request, decision)
    text = json.dumps(line)
    for secret in ("S3CR3T", "1F767F17", "oscuro", "k-991", "eyJzdWIi", "Tr0ub4dor", "correo", "4539", "6467"):
        assert secret not in text, secret
    sent = line["request"]
    assert sent["query"] == "sessionid=REDACTED&q=zapatos"
    headers = dict(sent["headers"])
    assert headers["authorization"] == "Bearer REDACTED"
    assert headers["cookie"] == "JSESSIONID=REDACTED; tema=REDACTED"
    assert headers["x-api-key"] == "REDACTED" and headers["user-agent"] == "Mozilla/5.0"
    assert "content-length" not in headers  # the body is the one the layers read
    assert sent["body"] == ("login=ana7&password=REDACTED&email=xxx.xx%C3%A1x@xxxxxx.xx"
                            "&ntc=0000+0000+0000+0000&nombre=Ana")
    assert line["redacted"] == ["card", "cookie JSESSIONID", "cookie tema", "email", "form password",
                                "header authorization", "header x-api-key", "query sessionid"]


def test_the_decision_is_attached_and_names_the_label_training_needs():
    request, decision = decided("GET", "/buscar?q=%27%20UNION%20SELECT%20password%20FROM%20users--")
    line = captured(request, decision)
    assert line["action"] == "deny" and line["denied_by"] == "attack" and line["status"] == 403
    assert line["label"] == "attack" and line["source"] == "capture" and line["set"] == "default"
    assert line["layers"][0]["layer"] == "attack" and "attack" in line["layers"][0]["scores"]
    assert line["id"] == "req-1" and line["client"] == {"ip": "198.51.100.7"}
    allowed = captured(*decided("GET", "/buscar?q=zapatos"))
    assert allowed["action"] == "allow" and allowed["label"] == "benign"


def test_json_and_multipart_bodies_are_redacted_in_their_own_syntax():
    body = json.dumps({"user": {"email": "luis@ejemplo.org", "password": "x"}, "auth": {"otp": "123456"},
                       "nota": "llamar al 4539148803436467"}).encode()
    line = captured(*decided("POST", "/api/alta", headers=[("content-type", "application/json")], body=body))
    assert json.loads(line["request"]["body"]) == {
        "user": {"email": "xxxx@xxxxxxx.xxx", "password": "REDACTED"}, "auth": {"otp": "REDACTED"},
        "nota": "llamar al 0000000000000000"}
    boundary = "xYz"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"pie\"\r\n\r\nFoto de Ana\r\n"
                 f"--{boundary}\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc123\r\n"
                 f"--{boundary}\r\nContent-Disposition: form-data; name=\"foto\"; filename=\"ana_perez.jpg\"\r\n"
                 f"Content-Type: image/jpeg\r\n\r\n\xff\xd8JPEG\r\n--{boundary}--\r\n").encode("latin-1")
    line = captured(*decided("POST", "/fotos", headers=[("content-type", f"multipart/form-data; boundary={boundary}")],
                             body=multipart))
    kept = line["request"]["body"]
    assert "Foto de Ana" in kept and "abc123" not in kept and "JPEG" not in kept
    assert 'filename="xxx_xxxxx.xxx"' in kept and "Content-Type: image/jpeg" in kept
    assert set(line["redacted"]) == {"form token", "file foto"}


def test_a_body_the_layers_did_not_read_is_marked_and_the_unredacted_capture_keeps_everything():
    request = Request("POST", "/subir", headers=(FORM, ("content-length", "42")), has_body=True)
    decision = Transaction(POLICY.only_layers(set()), request).on_headers()
    line = captured(request, decision)
    assert line["request"]["body_unread"] is True and ["content-length", "42"] in line["request"]["headers"]
    request, decision = decided("GET", "/x?password=hunter2", headers=[("cookie", "sid=abc")])
    line = captured(request, decision, redact=False)
    assert line["request"]["query"] == "password=hunter2" and "redacted" not in line


def test_masking_keeps_the_class_of_every_character():
    assert mask("Ana.Peña-7@correo.es") == "Xxx.Xxáx-0@xxxxxx.xx"
    assert mask("ana%40x.es") == "xxx%40x.xx"  # a percent-escape is the encoding, not the person


def test_sampling_and_the_audit_share_one_decision_point(tmp_path):
    capture = CaptureWriter(str(tmp_path / "capture.jsonl"), 0.5, rng=random.Random(3))
    writer = AuditWriter(None, capture=capture)
    request, decision = decided("GET", "/x?q=1")
    for _ in range(400):
        if writer.wants(decision):
            writer.write(decision, request, None, "digest", 1.0)
    writer.close()
    lines = (tmp_path / "capture.jsonl").read_text().splitlines()
    assert 150 < len(lines) < 250  # about half
    assert not (tmp_path / "audit.jsonl").exists()


def test_learn_reads_a_capture_as_it_is(tmp_path):
    path = tmp_path / "capture.jsonl"
    capture = CaptureWriter(str(path), 1.0)
    policy = parse_policy("version: 1\ndefaults:\n  layers:\n    attack: {}\n", "capture")
    for item in shop_traffic(600):
        request, body = request_from_record(item)
        transaction = Transaction(policy, request)
        capture.write(transaction.on_headers() or transaction.on_body(body), request, "digest")
    capture.close()
    out = tmp_path / "learned.yaml"
    assert cli.main(["learn", str(path), "--out", str(out)]) == 0
    document = yaml.safe_load(out.read_text(encoding="utf-8"))
    form = document["paths"]["/tienda/publico/registro.jsp"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"]["schema"]["properties"]
    assert form["email"]["format"] == "email"  # masked, still an e-mail address
    assert form["B1"]["enum"] == ["Registrar"]
