"""Generated traffic of a small page-based shop in ISO-8859-1, as request records: pages that
take their fields by GET or as POST forms, values with Latin-1 accents percent-encoded as single
bytes (``A%F1adir``), a few pages requested without parameters, and product slugs."""
from __future__ import annotations

import random
from urllib.parse import quote_plus

NAMES = ["Jamón", "Núria", "Iñaki", "José", "María", "Begoña", "Ángel", "Lucía", "Raúl", "Inés", "Pau", "Óscar",
         "Marta", "Joan", "Elena", "Andrés", "Sofía", "Hugo", "Irene", "Álvaro"]
SURNAMES = ["Peña", "Muñoz", "García", "López", "Díaz", "Castaño", "Ibáñez", "Ruiz", "Sáez", "Gómez", "O'Neill"]
CITIES = ["Logroño", "Cádiz", "A Coruña", "Ávila", "León", "Málaga", "Lleida", "Cáceres", "Jaén", "Vigo"]
DOMAINS = ["correo.es", "tienda.com", "mail.net", "ejemplo.org"]
HEADERS = [["User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"],
           ["Accept", "text/html,application/xhtml+xml"], ["Host", "tienda.example:8080"]]
FORM = "application/x-www-form-urlencoded"
SLUGS = [f"producto-{word}-{n}" for n, word in enumerate(
    ["queso", "vino", "aceite", "jamon", "turron", "miel", "pan", "atun", "chorizo", "lomo", "cava", "sidra"])]


def latin1(value: str) -> str:
    """Form encoding as a Latin-1 page sends it: 'Añadir al carrito' -> 'A%F1adir+al+carrito'."""
    return quote_plus(value, encoding="latin-1", safe="")


def _fields(rng: random.Random, page: str) -> list[tuple[str, str]]:
    if page == "anadir.jsp":
        return [("id", str(rng.randint(1, 3))), ("cantidad", str(rng.randint(1, 99))), ("B1", "Añadir al carrito")]
    if page == "autenticar.jsp":
        return [("login", _login(rng)), ("pwd", _password(rng)), ("remember", rng.choice(["on", "off"])),
                ("B1", "Entrar")]
    name, surname = rng.choice(NAMES), rng.choice(SURNAMES)
    return [("login", _login(rng)), ("nombre", name), ("apellidos", f"{surname} {rng.choice(SURNAMES)}"),
            ("email", f"{_login(rng)}@{rng.choice(DOMAINS)}"), ("dni", f"{rng.randrange(10**8):08d}{rng.choice('TRWAGMYFPDXBNJZSQVHLCKE')}"),
            ("ciudad", rng.choice(CITIES)), ("cp", f"{rng.randrange(1000, 52999):05d}"), ("B1", "Registrar")]


def _login(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9))) + rng.choice(["", "1", "7"])


def _password(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijkmnñopqrstuvwxyz0123456789*.") for _ in range(rng.randint(6, 12)))


def record(number: int, method: str, path: str, fields: list[tuple[str, str]] | None = None) -> dict:
    encoded = "&".join(f"{name}={latin1(value)}" for name, value in fields or ())
    request = {"method": method, "path": path, "query": "", "headers": [list(h) for h in HEADERS], "body": ""}
    if method == "GET":
        request["query"] = encoded
    else:
        request["headers"] += [["Content-Type", FORM], ["Content-Length", str(len(encoded))]]
        request["body"] = encoded
    return {"id": f"shop-{number}", "label": "benign", "family": "benign", "request": request}


def shop_traffic(count: int = 1200, seed: int = 3) -> list[dict]:
    """Each form page filled in by GET and by POST; plain pages; product pages under /producto/."""
    rng = random.Random(seed)
    records: list[dict] = []
    while len(records) < count:
        roll = rng.random()
        if roll < 0.55:
            page = rng.choice(["anadir.jsp", "autenticar.jsp", "registro.jsp"])
            fields = _fields(rng, page)
            for method in ("GET", "POST"):
                records.append(record(len(records), method, f"/tienda/publico/{page}", fields))
        elif roll < 0.85:
            records.append(record(len(records), "GET", f"/tienda/{rng.choice(['index.jsp', 'carrito.jsp', 'estilos.css'])}"))
        else:
            records.append(record(len(records), "GET", f"/tienda/producto/{rng.choice(SLUGS)}"))
    return records[:count]
