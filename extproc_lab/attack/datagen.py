"""Deterministic generator of wide, realistic BENIGN request records.

The training data is narrow on the benign side (mostly CSIC 2010 Spanish
e-shop traffic), so the attack-score model tends to flag unfamiliar but
harmless text.  This module synthesises benign requests covering many
shapes of real traffic: multilingual search, tracking parameters, OAuth
redirects, JWTs, analytics cookies, REST/GraphQL JSON bodies, forms,
free text mentioning SQL-ish words, file names, filter DSLs, XML, multipart
uploads, custom headers, and more.

API::

    BENIGN_TEMPLATES: tuple[str, ...]
    benign_records(n, seed, templates=None) -> Iterator[dict]

Output is fully deterministic for a given ``(n, seed, templates)``: one
``random.Random(seed)`` drives all choices and every Faker locale instance is
seeded with ``seed_instance`` from a value derived via ``zlib.crc32`` (never
``hash()``).  ``faker`` is imported lazily; importing this module works without
it, generating records raises a clear ``ImportError``.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
import zlib
from datetime import date, datetime, timedelta
from typing import Callable, Iterable, Iterator
from urllib.parse import quote, urlencode

__all__ = ["BENIGN_TEMPLATES", "benign_records"]

LOCALES = (
    "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "ja_JP", "zh_CN",
    "ru_RU", "ar_AA", "hi_IN", "ko_KR", "pt_BR", "tr_TR", "pl_PL", "he_IL",
    "nl_NL", "sv_SE", "el_GR", "th_TH", "vi_VN", "uk_UA",
)

# locale -> accept-language header value
_ACCEPT_LANG = {
    "en_US": "en-US,en;q=0.9",
    "en_GB": "en-GB,en;q=0.9,en-US;q=0.8",
    "de_DE": "de-DE,de;q=0.9,en-US;q=0.7,en;q=0.6",
    "fr_FR": "fr-FR,fr;q=0.9,en;q=0.8",
    "es_ES": "es-ES,es;q=0.9",
    "it_IT": "it-IT,it;q=0.9,en-US;q=0.8,en;q=0.7",
    "ja_JP": "ja,en-US;q=0.9,en;q=0.8",
    "zh_CN": "zh-CN,zh;q=0.9,en;q=0.8",
    "ru_RU": "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7",
    "ar_AA": "ar,en;q=0.8",
    "hi_IN": "hi-IN,hi;q=0.9,en-IN;q=0.8,en;q=0.7",
    "ko_KR": "ko-KR,ko;q=0.9,en-US;q=0.8",
    "pt_BR": "pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7",
    "tr_TR": "tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7",
    "pl_PL": "pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7",
    "he_IL": "he-IL,he;q=0.9,en-US;q=0.8,en;q=0.7",
    "nl_NL": "nl-NL,nl;q=0.9,en;q=0.8",
    "sv_SE": "sv-SE,sv;q=0.9,en-US;q=0.8,en;q=0.7",
    "el_GR": "el-GR,el;q=0.9,en;q=0.8",
    "th_TH": "th-TH,th;q=0.9,en;q=0.8",
    "vi_VN": "vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7",
    "uk_UA": "uk-UA,uk;q=0.9,en-US;q=0.8,en;q=0.7",
}

_HOSTS = (
    "shop.example", "www.example.com", "api.example.com", "app.example.io",
    "store.example.org", "portal.example.net", "m.example.com",
    "accounts.example.com", "cdn-api.example.dev", "intranet.corp.example",
)

_BROWSER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/125.0.6422.80 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0",
    "Mozilla/5.0 (Linux; U; Android 11; zh-cn; Redmi Note 9 Pro Build/RKQ1.200826.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.127 Mobile Safari/537.36 XiaoMi/MiuiBrowser/17.8.4",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/462.0.0.39.108;FBBV/582138016;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBLC/en_US]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 321.0.0.29.112 (iPhone14,5; iOS 17_2; en_US; en; scale=3.00; 1170x2532)",
)

_APP_UAS = (
    "okhttp/4.12.0",
    "ShopApp/5.14.2 (iPhone; iOS 17.5; Scale/3.00)",
    "ShopApp/5.13.0 (Android 14; SM-A546B; Build/UP1A.231005.007)",
    "MyBank/2024.6.1 CFNetwork/1496.0.7 Darwin/23.5.0",
    "Dalvik/2.1.0 (Linux; U; Android 13; Pixel 6a Build/TQ3A.230901.001)",
    "python-requests/2.32.3",
    "axios/1.7.2",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "Go-http-client/2.0",
    "curl/8.7.1",
    "PostmanRuntime/7.39.0",
    "Apache-HttpClient/4.5.14 (Java/17.0.11)",
    "Java/21.0.3",
    "Ruby",
    "Wget/1.21.4",
    "aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22.4 md/GOOS#linux md/GOARCH#amd64",
    "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    "GitHub-Hookshot/8f0c2a1",
    "Slackbot 1.0 (+https://api.slack.com/robots)",
    "kube-probe/1.30",
    "ELB-HealthChecker/2.0",
    "Prometheus/2.53.0",
    "Grafana/11.1.0",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17726; Pro)",
)

_BOT_UAS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.175 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "Mozilla/5.0 (compatible; Applebot/0.1; +http://www.apple.com/go/applebot)",
    "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
)

_ACCEPT_HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
_ACCEPT_JSON = "application/json, text/plain, */*"
_ACCEPT_ANY = "*/*"


# --------------------------------------------------------------------------
# context / helpers
# --------------------------------------------------------------------------

def _faker_cls():
    try:
        from faker import Faker  # noqa: PLC0415 - lazy on purpose
    except ImportError as exc:  # pragma: no cover - depends on environment
        raise ImportError(
            "extproc_lab.attack.datagen needs the 'faker' package to generate "
            "records; install it with `pip install faker`"
        ) from exc
    return Faker


def _stabilise(f) -> None:
    """Make hash-seed dependent provider data deterministic.

    Some Faker locales build element lists from a ``set`` (e.g. it_IT
    ``cities``), so their order -- and thus the seeded output -- depends on
    ``PYTHONHASHSEED``.  Sorting those lists per instance fixes that.
    """
    for prov in f.providers:
        cities = getattr(prov, "cities", None)
        if isinstance(cities, list) and type(prov).__module__.endswith("it_IT"):
            prov.cities = sorted(cities)


class _Ctx:
    """Per-run state: one RNG and lazily created, seeded Faker instances."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self._fakers: dict = {}
        self._faker = _faker_cls()

    def fk(self, locale: str = "en_US"):
        f = self._fakers.get(locale)
        if f is None:
            f = self._faker(locale)
            _stabilise(f)
            f.seed_instance((self.seed * 1_000_003 + zlib.crc32(locale.encode())) & 0x7FFFFFFF)
            self._fakers[locale] = f
        return f

    # small conveniences -------------------------------------------------
    def choice(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def locale(self, en_bias: float = 0.3) -> str:
        return "en_US" if self.chance(en_bias) else self.choice(LOCALES)

    def dt(self, start_year: int = 2019, end_year: int = 2025) -> datetime:
        """Random datetime from the RNG (never relative to 'now')."""
        a = datetime(start_year, 1, 1)
        span = int((datetime(end_year + 1, 1, 1) - a).total_seconds())
        return a + timedelta(seconds=self.rng.randrange(span))

    def date(self, start_year: int = 2019, end_year: int = 2025) -> date:
        return self.dt(start_year, end_year).date()

    def hexs(self, n: int) -> str:
        return "%0*x" % (n, self.rng.getrandbits(4 * n))

    def alnum(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def b64url(self, nbytes: int) -> str:
        raw = bytes(self.rng.getrandbits(8) for _ in range(nbytes))
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ip(self) -> str:
        return self.fk().ipv4_public()

    def ua(self) -> str:
        r = self.rng.random()
        if r < 0.75:
            return self.choice(_BROWSER_UAS)
        if r < 0.85:
            return self.fk().user_agent()
        if r < 0.95:
            return self.choice(_APP_UAS)
        return self.choice(_BOT_UAS)

    def browser_ua(self) -> str:
        return self.choice(_BROWSER_UAS)


def _jdump(ctx: _Ctx, obj) -> str:
    if ctx.chance(0.3):
        return json.dumps(obj, ensure_ascii=ctx.chance(0.5), indent=2)
    seps = (",", ":") if ctx.chance(0.5) else (", ", ": ")
    return json.dumps(obj, ensure_ascii=ctx.chance(0.5), separators=seps)


def _qs(ctx: _Ctx, pairs) -> str:
    if not pairs:
        return ""
    if ctx.chance(0.2):
        return urlencode(pairs, quote_via=quote, safe="")
    return urlencode(pairs)


def _clean(v: str) -> str:
    return " ".join(str(v).split())


def _req(
    ctx: _Ctx,
    method: str,
    path: str,
    params=None,
    *,
    body: str = "",
    ctype: str | None = None,
    accept: str | None = None,
    ua: str | None = None,
    locale: str | None = None,
    cookie: str | None = None,
    referer: str | None = None,
    extra=(),
    host: str | None = None,
) -> dict:
    host = host or ctx.choice(_HOSTS)
    locale = locale or ctx.locale()
    headers = [
        ["host", host],
        ["user-agent", ua or ctx.ua()],
        ["accept", accept or (_ACCEPT_JSON if ctype else _ACCEPT_HTML)],
        ["accept-language", _ACCEPT_LANG.get(locale, "en-US,en;q=0.9")],
    ]
    if ctx.chance(0.6):
        headers.append(["accept-encoding", ctx.choice(("gzip, deflate, br", "gzip, deflate, br, zstd", "gzip"))])
    if cookie is None and ctx.chance(0.35):
        cookie = _session_cookie(ctx)
    if cookie:
        headers.append(["cookie", cookie])
    if referer is None and ctx.chance(0.3):
        referer = f"https://{host}/" + ctx.choice(("", "home", "products", "search", "account", "cart"))
    if referer:
        headers.append(["referer", referer])
    if ctx.chance(0.15):
        headers.append(["x-forwarded-for", ", ".join(ctx.ip() for _ in range(ctx.rng.randint(1, 3)))])
    for k, v in extra:
        headers.append([k.lower(), _clean(v)])
    if body or ctype:
        headers.append(["content-type", ctype or "text/plain; charset=utf-8"])
        headers.append(["content-length", str(len(body.encode("utf-8")))])
    if isinstance(params, (list, tuple, dict)):
        query = _qs(ctx, list(params.items()) if isinstance(params, dict) else params)
    else:
        query = params or ""
    return {
        "method": method,
        "path": path,
        "query": query,
        "headers": [[k, _clean(v)] for k, v in headers],
        "body": body,
    }


def _session_cookie(ctx: _Ctx) -> str:
    name = ctx.choice(("sessionid", "PHPSESSID", "JSESSIONID", "connect.sid", "_session_id", "SID", "laravel_session", "ASP.NET_SessionId"))
    if name == "connect.sid":
        val = "s%3A" + ctx.b64url(24) + "." + ctx.b64url(32)
    elif name == "JSESSIONID":
        val = ctx.hexs(32).upper() + (".node" + str(ctx.rng.randint(1, 9)) if ctx.chance(0.3) else "")
    else:
        val = ctx.alnum(ctx.rng.choice((26, 32, 40)), string.ascii_lowercase + string.digits)
    parts = [f"{name}={val}"]
    if ctx.chance(0.5):
        parts.append(f"csrftoken={ctx.alnum(32)}")
    if ctx.chance(0.4):
        parts.append(f"lang={ctx.choice(('en', 'de', 'fr', 'es', 'ja', 'pt-BR', 'zh-CN'))}")
    return "; ".join(parts)


# --------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------

TEMPLATES: dict[str, Callable[[_Ctx], dict]] = {}


def _template(fn: Callable[[_Ctx], dict]) -> Callable[[_Ctx], dict]:
    """Register ``t_<name>`` as template ``<name>`` (definition order kept)."""
    TEMPLATES[fn.__name__[2:]] = fn
    return fn


@_template
def t_site_search_i18n(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.1)
    f = ctx.fk(loc)
    r = ctx.rng.random()
    if r < 0.4:
        q = " ".join(f.words(ctx.rng.randint(1, 4)))
    elif r < 0.6:
        q = f.city()
    elif r < 0.8:
        q = f.name()
    else:
        q = f.sentence(nb_words=ctx.rng.randint(3, 8)).rstrip(".。")
    params = [(ctx.choice(("q", "query", "search", "s", "keyword", "k", "term")), q)]
    if ctx.chance(0.5):
        params.append(("lang", loc.split("_")[0]))
    if ctx.chance(0.4):
        params.append(("page", str(ctx.rng.randint(1, 30))))
    return _req(ctx, "GET", ctx.choice(("/search", "/s", "/find", "/en/search", "/catalog/search", "/api/search")), params, locale=loc)


@_template
def t_catalog_filters(ctx: _Ctx) -> dict:
    f = ctx.fk()
    params = []
    if ctx.chance(0.7):
        params.append(("category", ctx.choice(("shoes", "womens-clothing", "electronics/audio", "home & garden", "kids", "sale", "books"))))
    for k, vals in (("color", f.safe_color_name), ("size", lambda: ctx.choice(("XS", "S", "M", "L", "XL", "42", "10.5", "EU 39")))):
        for _ in range(ctx.rng.randint(0, 3)):
            params.append((ctx.choice((k, k + "[]")), vals()))
    if ctx.chance(0.6):
        lo = ctx.rng.randint(0, 200)
        params += [("price_min", str(lo)), ("price_max", str(lo + ctx.rng.randint(10, 900)))]
    if ctx.chance(0.5):
        params.append(("brand", ctx.choice((f.company(), "Levi's", "Marks & Spencer", "H&M", "Dolce&Gabbana", "Ben & Jerry's"))))
    params.append((ctx.choice(("sort", "sort_by", "orderby", "order")), ctx.choice(("price_asc", "price_desc", "newest", "-price", "popularity", "rating desc", "name", "relevance"))))
    params.append(("page", str(ctx.rng.randint(1, 60))))
    if ctx.chance(0.5):
        params.append((ctx.choice(("per_page", "limit", "pageSize")), ctx.choice(("12", "24", "48", "100"))))
    if ctx.chance(0.3):
        params.append(("in_stock", ctx.choice(("1", "true", "on"))))
    ctx.rng.shuffle(params)
    return _req(ctx, "GET", ctx.choice(("/products", "/c/" + ctx.choice(("men", "women", "outlet")), "/catalog", "/shop", "/api/v1/products")), params)


@_template
def t_utm_tracking(ctx: _Ctx) -> dict:
    f = ctx.fk()
    params = [
        ("utm_source", ctx.choice(("google", "facebook", "newsletter", "instagram", "tiktok", "bing", "linkedin", "partner_site", "Klaviyo"))),
        ("utm_medium", ctx.choice(("cpc", "email", "social", "paid_social", "affiliate", "display", "referral"))),
        ("utm_campaign", ctx.choice(("summer_sale_2024", "BF-2024", "spring-launch", "retargeting|lookalike", f.slug(), "q3 promo - EU"))),
    ]
    if ctx.chance(0.5):
        params.append(("utm_content", ctx.choice(("hero_banner", "cta-button", "text link", f.slug()))))
    if ctx.chance(0.4):
        params.append(("utm_term", " ".join(f.words(ctx.rng.randint(1, 3)))))
    r = ctx.rng.random()
    if r < 0.35:
        params.append(("gclid", "Cj0KCQjw" + ctx.b64url(60)[:70] + "_BwE"))
    elif r < 0.6:
        params.append(("fbclid", "IwAR" + ctx.b64url(45)))
    elif r < 0.7:
        params.append(("msclkid", ctx.hexs(32)))
    elif r < 0.8:
        params.append(("mc_cid", ctx.hexs(10)))
        params.append(("mc_eid", ctx.hexs(10)))
    if ctx.chance(0.3):
        params.append(("_gl", f"1*{ctx.alnum(6, string.ascii_lowercase + string.digits)}*_ga*{ctx.b64url(30)}"))
    return _req(ctx, "GET", ctx.choice(("/", "/landing/summer", "/lp/" + f.slug(), "/products/" + f.slug())), params,
                referer=ctx.choice(("https://www.google.com/", "https://l.facebook.com/", "https://t.co/" + ctx.alnum(10), "")) or None)


def _jwt(ctx: _Ctx, loc: str = "en_US") -> str:
    f = ctx.fk(loc)
    header = {"alg": ctx.choice(("RS256", "HS256", "ES256")), "typ": "JWT"}
    if ctx.chance(0.5):
        header["kid"] = ctx.alnum(16)
    now = 1_700_000_000 + ctx.rng.randint(0, 40_000_000)
    payload = {
        "iss": ctx.choice(("https://accounts.example.com", "https://login.example.io/oauth2", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_" + ctx.alnum(9))),
        "sub": ctx.uuid() if ctx.chance(0.5) else str(ctx.rng.randint(10_000, 99_999_999)),
        "aud": ctx.choice(("web-client", "api://default", ctx.alnum(26))),
        "iat": now, "exp": now + ctx.choice((300, 900, 3600, 86400)),
    }
    if ctx.chance(0.6):
        payload["email"] = f.email()
        payload["name"] = f.name()
    if ctx.chance(0.4):
        payload["scope"] = ctx.choice(("openid profile email", "read:orders write:orders", "offline_access"))
    enc = lambda o: base64.urlsafe_b64encode(json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode()).rstrip(b"=").decode()
    return f"{enc(header)}.{enc(payload)}.{ctx.b64url(ctx.choice((32, 64, 256)))}"


def _redirect_uri(ctx: _Ctx) -> str:
    return ctx.choice((
        "https://app.example.io/auth/callback",
        "https://www.example.com/oauth2/callback?provider=google",
        "com.example.shopapp:/oauth2redirect",
        "http://localhost:3000/api/auth/callback/github",
        "https://portal.example.net/signin-oidc",
        "https://store.example.org/account/login/callback?next=%2Forders%2F" + str(ctx.rng.randint(1000, 99999)),
    ))


@_template
def t_oauth_authorize(ctx: _Ctx) -> dict:
    params = [
        ("response_type", ctx.choice(("code", "code", "id_token token", "code id_token"))),
        ("client_id", ctx.choice((ctx.alnum(24), ctx.uuid(), f"{ctx.rng.randint(10**11, 10**12)}-{ctx.alnum(32, string.ascii_lowercase + string.digits)}.apps.googleusercontent.com"))),
        ("redirect_uri", _redirect_uri(ctx)),
        ("scope", ctx.choice(("openid profile email", "openid email offline_access", "read:user user:email", "https://www.googleapis.com/auth/userinfo.email openid", "api://default/.default offline_access"))),
        ("state", ctx.b64url(24)),
    ]
    if ctx.chance(0.6):
        params.append(("nonce", ctx.alnum(32)))
    if ctx.chance(0.6):
        params += [("code_challenge", ctx.b64url(32)), ("code_challenge_method", "S256")]
    if ctx.chance(0.3):
        params.append(("prompt", ctx.choice(("consent", "login", "select_account", "none"))))
    if ctx.chance(0.3):
        params.append(("login_hint", ctx.fk().email()))
    if ctx.chance(0.2):
        params.append(("ui_locales", ctx.choice(("de-DE en", "fr", "ja", "pt-BR"))))
    return _req(ctx, "GET", ctx.choice(("/oauth2/authorize", "/authorize", "/o/oauth2/v2/auth", "/realms/main/protocol/openid-connect/auth", "/connect/authorize")), params,
                host="accounts.example.com", ua=ctx.browser_ua())


@_template
def t_oauth_callback(ctx: _Ctx) -> dict:
    params = [("code", ctx.choice((ctx.b64url(32), "4/0A" + ctx.b64url(50), ctx.uuid() + "." + ctx.uuid()))), ("state", ctx.b64url(24))]
    if ctx.chance(0.4):
        params.append(("session_state", ctx.uuid() + "." + ctx.alnum(10)))
    if ctx.chance(0.3):
        params.append(("scope", "email profile openid https://www.googleapis.com/auth/userinfo.profile"))
    if ctx.chance(0.2):
        params.append(("authuser", "0"))
        params.append(("prompt", "consent"))
    if ctx.chance(0.1):
        params = [("error", "access_denied"), ("error_description", "The user denied the request."), ("state", ctx.b64url(24))]
    return _req(ctx, "GET", ctx.choice(("/auth/callback", "/oauth2/callback", "/signin-oidc", "/api/auth/callback/google", "/login/oauth/complete")), params,
                referer="https://accounts.example.com/", ua=ctx.browser_ua())


@_template
def t_oauth_token(ctx: _Ctx) -> dict:
    gt = ctx.choice(("authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"))
    params = [("grant_type", gt)]
    if gt == "authorization_code":
        params += [("code", ctx.b64url(32)), ("redirect_uri", _redirect_uri(ctx)), ("code_verifier", ctx.b64url(48))]
    elif gt == "refresh_token":
        params.append(("refresh_token", ctx.choice((_jwt(ctx), ctx.b64url(48), "1//0" + ctx.b64url(70)))))
    elif gt == "client_credentials":
        params.append(("scope", ctx.choice(("orders.read orders.write", "api://backend/.default", "inventory:read"))))
    else:
        params.append(("device_code", ctx.b64url(30)))
    params.append(("client_id", ctx.alnum(24)))
    if ctx.chance(0.5):
        params.append(("client_secret", ctx.alnum(40)))
    body = _qs(ctx, params)
    return _req(ctx, "POST", ctx.choice(("/oauth/token", "/oauth2/v1/token", "/connect/token", "/realms/main/protocol/openid-connect/token")),
                body=body, ctype="application/x-www-form-urlencoded", ua=ctx.choice(_APP_UAS), host="accounts.example.com", cookie="")


@_template
def t_jwt_tokens(ctx: _Ctx) -> dict:
    loc = ctx.locale()
    tok = _jwt(ctx, loc)
    r = ctx.rng.random()
    cookie = None
    if r < 0.4:
        body = {"refresh_token": tok}
        if ctx.chance(0.5):
            body["device_id"] = ctx.uuid()
        path = "/api/auth/refresh"
    elif r < 0.7:
        body = {"id_token": tok, "provider": ctx.choice(("google", "apple", "microsoft", "okta")), "nonce": ctx.alnum(24)}
        path = "/api/auth/oidc/verify"
    else:
        body = {"cart_id": ctx.uuid(), "items": ctx.rng.randint(1, 9)}
        cookie = f"access_token={tok}; " + _session_cookie(ctx) if ctx.chance(0.5) else f"__Host-id_token={tok}; theme=dark"
        path = "/api/cart/sync"
    return _req(ctx, "POST", path, body=_jdump(ctx, body), ctype="application/json", cookie=cookie, locale=loc)


def _consent_cookie(ctx: _Ctx) -> str:
    groups = ",".join(f"C000{k}:{ctx.rng.randint(0, 1)}" for k in range(1, 6))
    pairs = [
        ("isGpcEnabled", "0"),
        ("datestamp", ctx.dt().strftime("%a %b %d %Y %H:%M:%S GMT+0200 (Central European Summer Time)")),
        ("version", "202404.1.0"), ("browserGpcFlag", "0"), ("isIABGlobal", "false"),
        ("hosts", ""), ("consentId", ctx.uuid()), ("interactionCount", str(ctx.rng.randint(0, 4))),
        ("isAnonUser", "1"), ("landingPath", "NotLandingPage"), ("groups", groups),
        ("geolocation", ctx.choice(("DE;BE", "US;CA", "FR;IDF", "GB;ENG"))), ("AwaitingReconsent", "false"),
    ]
    return "OptanonConsent=" + urlencode(pairs, quote_via=quote, safe="")


@_template
def t_analytics_cookies(ctx: _Ctx) -> dict:
    now = 1_700_000_000 + ctx.rng.randint(0, 40_000_000)
    parts = [
        f"_ga=GA1.1.{ctx.rng.randint(10**8, 10**10)}.{now}",
        f"_gid=GA1.2.{ctx.rng.randint(10**8, 10**10)}.{now}",
    ]
    if ctx.chance(0.6):
        parts.append(f"_ga_{ctx.alnum(10, string.ascii_uppercase + string.digits)}=GS1.1.{now}.{ctx.rng.randint(1, 40)}.1.{now + 400}.0.0.0")
    if ctx.chance(0.6):
        parts.append(f"_fbp=fb.1.{now}123.{ctx.rng.randint(10**9, 10**10)}")
    if ctx.chance(0.3):
        parts.append(f"_fbc=fb.1.{now}456.IwAR{ctx.b64url(40)}")
    if ctx.chance(0.5):
        parts.append(f"_gcl_au=1.1.{ctx.rng.randint(10**8, 10**10)}.{now}")
    if ctx.chance(0.4):
        parts.append(f"_hjSessionUser_{ctx.rng.randint(10**5, 10**7)}=" + base64.b64encode(json.dumps({"id": ctx.uuid(), "created": now * 1000, "existing": True}).encode()).decode())
    if ctx.chance(0.6):
        parts.append(_consent_cookie(ctx))
        parts.append(f"OptanonAlertBoxClosed={ctx.dt().strftime('%Y-%m-%dT%H:%M:%S')}.{ctx.rng.randint(0, 999):03d}Z")
    if ctx.chance(0.3):
        parts.append("cookieyes-consent=consentid:" + ctx.b64url(24) + ",consent:yes,action:yes,necessary:yes,functional:yes,analytics:no,performance:no,advertisement:no")
    if ctx.chance(0.3):
        parts.append("ajs_anonymous_id=%22" + ctx.uuid() + "%22")
    if ctx.chance(0.4):
        parts.append("cart=" + quote(json.dumps([{"sku": ctx.alnum(8).upper(), "qty": ctx.rng.randint(1, 3)}], separators=(",", ":"))))
    if ctx.chance(0.3):
        parts.append("recently_viewed=" + quote("|".join(str(ctx.rng.randint(1000, 99999)) for _ in range(ctx.rng.randint(2, 6)))))
    parts.append(_session_cookie(ctx))
    ctx.rng.shuffle(parts)
    return _req(ctx, "GET", ctx.choice(("/", "/products/" + ctx.fk().slug(), "/account", "/blog/" + ctx.fk().slug(), "/cart")), None,
                cookie="; ".join(parts), ua=ctx.browser_ua())


def _address(ctx: _Ctx, loc: str) -> dict:
    f = ctx.fk(loc)
    d = {"line1": f.street_address(), "city": f.city(), "postal_code": f.postcode(), "country": f.current_country_code() if hasattr(f, "current_country_code") else loc[-2:]}
    if ctx.chance(0.3):
        d["line2"] = ctx.choice(("Apt. " + str(ctx.rng.randint(1, 90)), "c/o " + f.name(), "2nd floor", "Bldg 4, Suite 210"))
    return d


def _money(ctx: _Ctx, lo=1, hi=500) -> float:
    return round(ctx.rng.uniform(lo, hi), 2)


@_template
def t_rest_order(ctx: _Ctx) -> dict:
    loc = ctx.locale()
    f = ctx.fk(loc)
    items = []
    for _ in range(ctx.rng.randint(1, 5)):
        items.append({
            "sku": f"{ctx.alnum(3, string.ascii_uppercase)}-{ctx.rng.randint(1000, 9999)}",
            "name": ctx.choice((f.catch_phrase() if loc == "en_US" else " ".join(f.words(2)), "T-Shirt 'Classic' (M)", "USB-C cable 2m", "Café crème 500g")),
            "quantity": ctx.rng.randint(1, 4),
            "unit_price": _money(ctx),
            "options": {"color": ctx.fk().safe_color_name(), "gift_wrap": ctx.chance(0.2)},
        })
    body = {
        "order_id": ctx.uuid(),
        "customer": {"id": ctx.rng.randint(1, 10**7), "name": f.name(), "email": f.email(), "phone": f.phone_number()},
        "items": items,
        "currency": ctx.choice(("EUR", "USD", "GBP", "JPY", "BRL", "PLN", "SEK", "INR")),
        "shipping_address": _address(ctx, loc),
        "billing_same_as_shipping": ctx.chance(0.7),
        "coupon": ctx.choice((None, "SUMMER10", "WELCOME-5", "FREESHIP")),
        "notes": ctx.choice(("", "Please leave at the door", f.sentence())),
        "created_at": ctx.dt().isoformat() + "Z",
        "total": round(sum(i["unit_price"] * i["quantity"] for i in items), 2),
    }
    method, path = ctx.choice((("POST", "/api/v1/orders"), ("POST", "/api/checkout"), ("PUT", f"/api/v1/orders/{body['order_id']}")))
    return _req(ctx, method, path, body=_jdump(ctx, body), ctype=ctx.choice(("application/json", "application/json; charset=utf-8")), locale=loc)


@_template
def t_rest_user_profile(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.1)
    f = ctx.fk(loc)
    body = {
        "first_name": f.first_name(), "last_name": ctx.choice((f.last_name(), "O'Brien", "D'Angelo", "van der Berg", "García-Márquez", "Nguyễn")),
        "display_name": f.user_name(), "email": f.email(),
        "birthdate": ctx.date(1950, 2006).isoformat(), "gender": ctx.choice(("F", "M", "X", None)),
        "address": _address(ctx, loc), "locale": loc.replace("_", "-"),
        "timezone": f.timezone(), "phone": f.phone_number(),
        "preferences": {"newsletter": ctx.chance(0.5), "sms": ctx.chance(0.2), "theme": ctx.choice(("light", "dark", "system")), "currency": f.currency_code()},
        "tags": f.words(ctx.rng.randint(0, 4)),
    }
    if ctx.chance(0.4):
        body["bio"] = f.paragraph(nb_sentences=ctx.rng.randint(1, 3))
    if ctx.chance(0.3):
        body["website"] = f.url()
    if ctx.chance(0.3):
        body = {"user": body, "updated_fields": list(body)[: ctx.rng.randint(1, 5)]}
    uid = ctx.uuid() if ctx.chance(0.5) else str(ctx.rng.randint(1, 10**6))
    method, path = ctx.choice((("PUT", f"/api/users/{uid}"), ("PATCH", f"/api/v2/users/{uid}/profile"), ("POST", "/api/users"), ("PATCH", "/api/me")))
    return _req(ctx, method, path, body=_jdump(ctx, body), ctype="application/json", locale=loc)


_GQL_QUERIES = (
    ("GetProduct", "query GetProduct($id: ID!, $locale: String) {\n  product(id: $id, locale: $locale) {\n    id\n    title\n    price { amount currencyCode }\n    images(first: 5) { edges { node { url altText } } }\n    ...ProductReviews\n  }\n}\n\nfragment ProductReviews on Product {\n  reviews(first: 3, orderBy: {field: CREATED_AT, direction: DESC}) { nodes { rating body author { name } } }\n}"),
    ("SearchProducts", "query SearchProducts($query: String!, $first: Int = 20, $after: String) { search(query: $query, first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { ... on Product { id title } ... on Collection { id handle } } } }"),
    ("Viewer", "query Viewer { viewer { login name avatarUrl(size: 64) repositories(first: 10, orderBy: {field: UPDATED_AT, direction: DESC}) { totalCount nodes { name stargazerCount } } } }"),
    ("AddToCart", "mutation AddToCart($cartId: ID!, $lines: [CartLineInput!]!) {\n  cartLinesAdd(cartId: $cartId, lines: $lines) {\n    cart { id totalQuantity cost { totalAmount { amount currencyCode } } }\n    userErrors { field message }\n  }\n}"),
    ("UpdateProfile", "mutation UpdateProfile($input: UpdateProfileInput!) { updateProfile(input: $input) { user { id displayName bio } errors { path message } } }"),
    ("DeleteAddress", "mutation DeleteAddress($id: ID!) { deleteAddress(id: $id) { deletedId } }"),
    ("OrderHistory", "query OrderHistory($first: Int!, $filter: OrderFilter) {\n  orders(first: $first, filter: $filter) {\n    edges { node { ...OrderFields } }\n  }\n}\nfragment OrderFields on Order { id number status placedAt totalPrice { amount } lineItems(first: 10) { nodes { title quantity } } }"),
    ("OnCommentAdded", "subscription OnCommentAdded($postId: ID!) { commentAdded(postId: $postId) { id body createdAt author { id name } } }"),
)


@_template
def t_graphql(ctx: _Ctx) -> dict:
    loc = ctx.locale()
    f = ctx.fk(loc)
    op, q = ctx.choice(_GQL_QUERIES)
    if ctx.chance(0.3):
        q = " ".join(q.split())
    variables = {
        "GetProduct": lambda: {"id": f"gid://shop/Product/{ctx.rng.randint(10**6, 10**10)}", "locale": loc.replace("_", "-")},
        "SearchProducts": lambda: {"query": " ".join(f.words(ctx.rng.randint(1, 3))), "first": 24, "after": ctx.choice((None, ctx.b64url(18)))},
        "Viewer": lambda: {},
        "AddToCart": lambda: {"cartId": f"gid://shop/Cart/{ctx.alnum(26)}", "lines": [{"merchandiseId": f"gid://shop/ProductVariant/{ctx.rng.randint(10**6, 10**9)}", "quantity": ctx.rng.randint(1, 3)}]},
        "UpdateProfile": lambda: {"input": {"displayName": f.name(), "bio": f.sentence()}},
        "DeleteAddress": lambda: {"id": ctx.uuid()},
        "OrderHistory": lambda: {"first": 10, "filter": {"status": ctx.choice(("OPEN", "FULFILLED", "CANCELLED")), "placedAfter": ctx.date().isoformat()}},
        "OnCommentAdded": lambda: {"postId": str(ctx.rng.randint(1, 99999))},
    }[op]()
    payload = {"operationName": op, "query": q, "variables": variables}
    if ctx.chance(0.2):
        payload = {"operationName": op, "variables": variables, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": ctx.hexs(64)}}}
    if ctx.chance(0.1):
        payload = [payload, {"operationName": "Viewer", "query": _GQL_QUERIES[2][1], "variables": {}}]
    return _req(ctx, "POST", ctx.choice(("/graphql", "/api/graphql", "/api/2024-07/graphql.json", "/gql")), body=_jdump(ctx, payload),
                ctype="application/json", locale=loc, extra=[("apollographql-client-name", "web")] if ctx.chance(0.2) else ())


# Free-text snippets that naturally contain SQL/shell/HTML-ish words and
# characters.  {p} = product, {n} = number, {name} = person name.
_TRIGGER_TEXT = {
    "en": (
        "Please select the blue one, the red one arrived damaged.",
        "How do I delete my account and all my data?",
        "Can you update my order #{n}? The address where it should go is wrong.",
        "I ordered by mistake, please cancel and drop the charge.",
        "The script on the checkout page froze twice, had to reload.",
        "My cat absolutely loves this {p} <3",
        "Size runs small: M < L here, so order one size up.",
        "Rating: 5 > 3 stars I gave the last one. Much better!",
        "Works great with the union adapter, plus shipping was fast & cheap.",
        "Insert the batteries before first use, otherwise the alert light blinks.",
        "Battery life is ~10% better than advertised. 100% recommend :)",
        "Tom & Jerry's favourite! Bought 2 for my kids' room.",
        "Use the \"quick start\" guide -- it's much simpler than the manual.",
        "Had to exec a firmware update but then it worked fine.",
        "Is there an option to sort by price, or filter where rating >= 4?",
        "Customer service said to drop it off at any store. Great experience!",
        "Order by Friday and it ships Monday, as promised.",
        "Great value for money... 10/10 would buy again ;-)",
        "Select all, copy, paste -- the app just works. **Love it**",
        "See https://www.example.com/help?topic=returns&lang=en for the return policy.",
        "The null hypothesis was rejected at p < 0.05, as expected.",
        "I'm not sure whether to update to the new version or wait :/",
        "Colour is more like \"navy\" than 'royal blue' IMO.",
        "{name} from support was super helpful, thanks!",
        "Dimensions: 30 x 20 x 10 cm, weight ≈ 1.2 kg.",
        "Quick note: #1 was wrong, #2 fixed it. Cheers!",
        "Wish list: dark mode, export to CSV, and a 'where is my order' page.",
        "It's a 2-in-1: table AND chair. Kids (and I) love it xD",
    ),
    "fr": (
        "L'été dernier j'ai commandé la même chose, qualité au top !",
        "Je voudrais supprimer mon compte, comment faire ?",
        "C'est l'article qu'il me fallait, merci à l'équipe d'{name}.",
        "Livraison rapide & emballage soigné. Je recommande à 100 % !",
        "Pouvez-vous mettre à jour l'adresse où livrer ma commande n°{n} ?",
        "Aujourd'hui j'ai reçu le colis, mais l'écran était rayé :(",
    ),
    "de": (
        "Bitte die Bestellung Nr. {n} stornieren, ich habe mich vertan.",
        "Größe fällt klein aus – lieber eine Nummer größer wählen.",
        "Preis/Leistung: 5 von 5 Sternen! Lieferung in < 24 h.",
        "Wie kann ich mein Konto löschen? Danke im Voraus & viele Grüße",
        "Das Update hat \"alles\" repariert, super Support von {name}.",
    ),
    "es": (
        "¿Cómo puedo eliminar mi cuenta? Gracias de antemano.",
        "¡Me encanta! Llegó antes de lo previsto & bien embalado.",
        "Seleccioné la talla M pero me llegó una L, ¿pueden cambiarla?",
        "El pedido n.º {n} aún no ha llegado, ¿dónde está?",
    ),
    "it": (
        "Ottimo prodotto, l'ho regalato a mia madre e l'ha adorato!",
        "Vorrei aggiornare l'indirizzo dell'ordine n. {n}, per favore.",
        "Qualità/prezzo: 10 e lode. Spedizione un po' lenta però.",
    ),
    "pt": (
        "Produto excelente! Chegou em 2 dias & bem embalado.",
        "Como faço para excluir minha conta? Obrigado!",
        "Selecionei o tamanho errado, posso trocar?",
    ),
    "ja": (
        "とても使いやすいです！また購入したいと思います。",
        "注文番号{n}の配送先を変更したいのですが、可能でしょうか？",
        "サイズが少し小さめでした（普段Mですが、Lで丁度良い）。",
    ),
    "zh": (
        "质量很好，物流也很快，五星好评！",
        "请问如何删除我的账户？谢谢。",
        "订单号{n}还没有发货，请帮忙查一下。",
    ),
    "ru": (
        "Отличный товар, доставка быстрая! Рекомендую 100%.",
        "Как удалить аккаунт? Спасибо заранее.",
        "Заказ №{n} пришёл с повреждённой упаковкой :(",
    ),
    "ar": ("منتج رائع، التوصيل كان سريعاً جداً!", "كيف يمكنني حذف حسابي؟ شكراً لكم."),
    "he": ("מוצר מעולה, הגיע מהר מהצפוי!", "איך אפשר למחוק את החשבון שלי?"),
    "ko": ("배송이 빨라서 좋아요! 재구매 의사 있습니다 ^^", "주문번호 {n} 배송지를 변경하고 싶어요."),
    "hi": ("बहुत अच्छा उत्पाद है, डिलीवरी भी समय पर हुई।",),
    "tr": ("Ürün harika, kargo çok hızlıydı. Teşekkürler!", "Siparişimi nasıl iptal edebilirim?"),
    "pl": ("Świetny produkt, polecam! Dostawa w 2 dni.", "Jak mogę usunąć swoje konto?"),
    "nl": ("Top product, snel geleverd & goed verpakt!",),
    "sv": ("Fantastisk kvalitet, snabb leverans. Rekommenderas!",),
    "el": ("Εξαιρετικό προϊόν, γρήγορη παράδοση!",),
    "th": ("สินค้าดีมาก ส่งไวค่ะ",),
    "vi": ("Sản phẩm rất tốt, giao hàng nhanh!",),
    "uk": ("Чудовий товар, швидка доставка! Дякую.",),
}

_EMOTICONS = (":)", ":-)", ";)", ":D", "<3", "^_^", "😊", "👍", "🙏", "😂", "🔥", "✨", "xD", ":-(", "¯\\_(ツ)_/¯", "(╯°□°)╯", "")


def _free_text(ctx: _Ctx, loc: str | None = None, sentences: int | None = None) -> str:
    loc = loc or ctx.locale(0.4)
    lang = loc.split("_")[0]
    bank = _TRIGGER_TEXT.get(lang, _TRIGGER_TEXT["en"])
    f = ctx.fk(loc)
    out: list[str] = []
    for _ in range(sentences or ctx.rng.randint(1, 4)):
        r = ctx.rng.random()
        if r < 0.45:
            s = ctx.choice(bank)
        elif r < 0.6:
            s = ctx.choice(_TRIGGER_TEXT["en"])
        else:
            s = ""
        if not s or s in out:
            s = f.sentence(nb_words=ctx.rng.randint(4, 14))
        out.append(s.format(n=ctx.rng.randint(10000, 9999999), p=ctx.choice(("bed", "scratcher", "lamp", "backpack")), name=f.first_name()))
    text = " ".join(out)
    if ctx.chance(0.3):
        text += " " + ctx.choice(_EMOTICONS)
    if ctx.chance(0.15):
        text = text.replace(". ", ".\n", 1)
    if ctx.chance(0.05):
        text = text.upper()
    return text


@_template
def t_login_form(ctx: _Ctx) -> dict:
    f = ctx.fk(ctx.locale())
    pw = ctx.choice((
        f.password(length=ctx.rng.randint(8, 20), special_chars=True),
        f.password(length=12, special_chars=False),
        "Sommer2024!", "P@ssw0rd-" + str(ctx.rng.randint(10, 99)), "correct horse battery staple",
        "I<3my-cat" + str(ctx.rng.randint(1, 99)), "O'Neill#" + str(ctx.rng.randint(1000, 9999)),
    ))
    params = [(ctx.choice(("username", "email", "login", "user[email]", "j_username")), ctx.choice((f.email(), f.user_name(), f.email(safe=False)))),
              (ctx.choice(("password", "passwd", "user[password]", "j_password")), pw)]
    if ctx.chance(0.6):
        params.insert(0, (ctx.choice(("csrf_token", "csrfmiddlewaretoken", "_token", "authenticity_token", "__RequestVerificationToken")), ctx.b64url(32)))
    if ctx.chance(0.5):
        params.append(("remember_me", ctx.choice(("on", "1", "true"))))
    if ctx.chance(0.4):
        params.append(("next", ctx.choice(("/account/orders", "/checkout?step=2", "/", "/dashboard#overview"))))
    return _req(ctx, "POST", ctx.choice(("/login", "/account/login", "/users/sign_in", "/j_security_check", "/auth/login", "/wp-login.php")),
                body=_qs(ctx, params), ctype="application/x-www-form-urlencoded", ua=ctx.browser_ua())


@_template
def t_registration_form(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.2)
    f = ctx.fk(loc)
    pw = f.password(length=ctx.rng.randint(10, 18))
    params = [
        ("first_name", f.first_name()), ("last_name", ctx.choice((f.last_name(), "O'Connor", "d'Alembert", "Müller-Lüdenscheidt", "St. John"))),
        ("email", f.email()), ("password", pw), ("password_confirmation", pw),
        ("country", loc[-2:]), ("terms", "accepted"),
    ]
    if ctx.chance(0.5):
        params.append(("phone", f.phone_number()))
    if ctx.chance(0.4):
        params.append(("company", f.company()))
    if ctx.chance(0.3):
        params.append(("birthday", ctx.date(1950, 2006).strftime(ctx.choice(("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y")))))
    if ctx.chance(0.3):
        params.append(("referral_code", ctx.alnum(8, string.ascii_uppercase + string.digits)))
    if ctx.chance(0.3):
        params.append(("g-recaptcha-response", "03AFcWeA" + ctx.b64url(200)))
    if ctx.chance(0.3):
        body = _jdump(ctx, dict(params))
        return _req(ctx, "POST", "/api/v1/register", body=body, ctype="application/json", locale=loc)
    return _req(ctx, "POST", ctx.choice(("/register", "/signup", "/account/create", "/users")), body=_qs(ctx, params),
                ctype="application/x-www-form-urlencoded", locale=loc, ua=ctx.browser_ua())


@_template
def t_contact_form(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.3)
    f = ctx.fk(loc)
    params = [("name", f.name()), ("email", f.email()),
              ("subject", ctx.choice(("Order question", "Return request", "Partnership", "Feedback", "Re: your order #" + str(ctx.rng.randint(1000, 99999)), f.sentence(nb_words=4).rstrip(".")))),
              ("message", _free_text(ctx, loc, ctx.rng.randint(2, 6)))]
    if ctx.chance(0.4):
        params.append(("phone", f.phone_number()))
    if ctx.chance(0.3):
        params.append(("order_number", f"#{ctx.rng.randint(100000, 999999)}"))
    if ctx.chance(0.3):
        params.append(("topic", ctx.choice(("billing", "shipping & delivery", "technical issue", "other"))))
    return _req(ctx, "POST", ctx.choice(("/contact", "/support/contact", "/kontakt", "/contact-us", "/api/contact")), body=_qs(ctx, params),
                ctype="application/x-www-form-urlencoded; charset=UTF-8", locale=loc, ua=ctx.browser_ua())


@_template
def t_review_text(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.3)
    f = ctx.fk(loc)
    body = {
        "product_id": ctx.rng.randint(1, 10**6), "rating": ctx.rng.randint(1, 5),
        "title": ctx.choice((f.sentence(nb_words=ctx.rng.randint(2, 6)).rstrip("."), "Great!", "Not what I expected...", "5 stars <3", "Meh :/", "Best purchase this year!!!")),
        "body": _free_text(ctx, loc), "author": ctx.choice((f.first_name(), f.name(), f.user_name(), "Anonymous")),
        "recommend": ctx.chance(0.8), "verified_purchase": ctx.chance(0.7), "locale": loc.replace("_", "-"),
    }
    if ctx.chance(0.3):
        body["pros"] = ctx.rng.sample(["price", "quality", "fast delivery", "easy setup", "looks great", "quiet"], ctx.rng.randint(1, 3))
        body["cons"] = [ctx.choice(("size runs small", "battery", "none", "manual only in English"))]
    if ctx.chance(0.3):
        params = [("rating", str(body["rating"])), ("title", body["title"]), ("review", body["body"]), ("nickname", body["author"])]
        return _req(ctx, "POST", f"/products/{ctx.rng.randint(1, 99999)}/reviews", body=_qs(ctx, params), ctype="application/x-www-form-urlencoded", locale=loc)
    return _req(ctx, "POST", ctx.choice(("/api/reviews", "/api/v1/products/%d/reviews" % body["product_id"])), body=_jdump(ctx, body), ctype="application/json", locale=loc)


@_template
def t_support_message(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.3)
    f = ctx.fk(loc)
    text = _free_text(ctx, loc, ctx.rng.randint(2, 7))
    if ctx.chance(0.3):
        text += "\n\n" + ctx.choice(("Thanks,", "Best regards,", "Cheers,", "Mit freundlichen Grüßen,", "Cordialement,", "Saludos,")) + "\n" + f.name()
    if ctx.chance(0.2):
        text += "\n\n> " + ctx.choice(("On Mon, support wrote:", "Your order has shipped!", "Ticket #%d created" % ctx.rng.randint(1000, 99999)))
    body = {
        "ticket": {"subject": ctx.choice(("Cannot log in", "Refund status", "Wrong item delivered", "Update billing address", "Delete my data (GDPR)", "App crashes on start")),
                   "comment": {"body": text, "public": True},
                   "priority": ctx.choice(("low", "normal", "high")),
                   "requester": {"name": f.name(), "email": f.email(), "locale_id": ctx.rng.randint(1, 1200)},
                   "tags": ctx.rng.sample(["web", "mobile", "billing", "shipping", "account", "vip", "eu"], ctx.rng.randint(0, 3)),
                   "custom_fields": [{"id": ctx.rng.randint(10**6, 10**8), "value": ctx.choice(("order_issue", "tech", None, "R-" + str(ctx.rng.randint(1000, 9999))))}]}
    }
    return _req(ctx, "POST", ctx.choice(("/api/v2/tickets.json", "/api/support/tickets", "/helpdesk/tickets")), body=_jdump(ctx, body), ctype="application/json", locale=loc)


@_template
def t_chat_message(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.4)
    f = ctx.fk(loc)
    r = ctx.rng.random()
    if r < 0.3:
        text = ctx.choice(("**Reminder:** standup moved to 10:30 :alarm_clock:", "- [x] buy milk\n- [ ] call mom\n- [ ] fix bike", "> quoted text\n\nAgreed 👍", "`npm install` fixed it, thanks!",
                           "Meeting notes: https://docs.example.com/d/" + ctx.b64url(20) + "/edit?usp=sharing", "_italic_ and ~~strike~~ and [link](https://example.com/a?b=c&d=e)",
                           "lol 😂😂 that's hilarious", "a < b but b > c, so?", "50% off today only!!! 🔥", "Can you send me the Q3 numbers? @" + f.user_name(), "brb 5 min", "ok 👌"))
    elif r < 0.6:
        text = _free_text(ctx, loc, ctx.rng.randint(1, 2))
    else:
        text = f.sentence(nb_words=ctx.rng.randint(2, 12)) + ("" if ctx.chance(0.6) else " " + ctx.choice(_EMOTICONS))
    body = {"channel": ctx.choice(("C0" + ctx.alnum(8, string.ascii_uppercase + string.digits), "general", "random", ctx.uuid())), "text": text,
            "client_msg_id": ctx.uuid(), "ts": f"{1_700_000_000 + ctx.rng.randint(0, 40_000_000)}.{ctx.rng.randint(0, 999999):06d}"}
    if ctx.chance(0.3):
        body["thread_ts"] = f"{1_700_000_000 + ctx.rng.randint(0, 40_000_000)}.{ctx.rng.randint(0, 999999):06d}"
    if ctx.chance(0.2):
        body["mentions"] = [f.user_name() for _ in range(ctx.rng.randint(1, 3))]
    return _req(ctx, "POST", ctx.choice(("/api/chat.postMessage", "/api/v1/messages", "/api/conversations/%s/messages" % ctx.uuid())), body=_jdump(ctx, body), ctype="application/json", locale=loc)


_CODE_SNIPPETS = (
    "```python\nfor i, row in enumerate(rows):\n    print(f\"{i}: {row['name']}\")\n```",
    "Try this:\n\n```js\nconst items = data.filter(x => x.price > 10).map(x => x.name);\nconsole.log(items.length);\n```",
    "Run `ls -la` in the project folder and check the permissions.",
    "I used `SELECT name FROM customers WHERE id = 42` and it returns nothing. Any idea?",
    "The query `SELECT COUNT(*) FROM orders GROUP BY status ORDER BY 1 DESC` is slow on Postgres 15.",
    "Wrap it in `<div class=\"container\">` and add `display: flex;` to the CSS.",
    "```bash\ngit checkout -b feature/login\ngit commit -am \"fix typo\"\n```",
    "Use `pip install -r requirements.txt` inside a venv, not globally.",
    "In React you can do `{items.map(i => <li key={i.id}>{i.title}</li>)}`.",
    "```sql\nUPDATE users SET last_login = NOW() WHERE id = $1;\n```\nis what the ORM generates.",
    "```go\nif err != nil {\n    return fmt.Errorf(\"open: %w\", err)\n}\n```",
    "Check the docs for `Array.prototype.includes()` - it's ES2016.",
    "`docker compose up -d && docker compose logs -f web`",
    "My regex `^[a-z0-9_-]{3,16}$` doesn't match uppercase, obviously :)",
    "```java\nList<String> names = users.stream().map(User::getName).collect(Collectors.toList());\n```",
    "Set `max_connections = 200` in postgresql.conf and restart.",
)


@_template
def t_forum_code_post(ctx: _Ctx) -> dict:
    f = ctx.fk()
    parts = [f.sentence(nb_words=ctx.rng.randint(5, 12))]
    for _ in range(ctx.rng.randint(1, 2)):
        parts.append(ctx.choice(_CODE_SNIPPETS))
    if ctx.chance(0.5):
        parts.append(ctx.choice(("Thanks in advance!", "Any help appreciated.", "EDIT: solved, see below.", "What am I missing?")))
    body = {"title": ctx.choice(("How to filter a list in JS?", "Slow query on large table", "Flexbox centering issue", "Python loop question", "Git branch workflow")) ,
            "body": "\n\n".join(parts), "tags": ctx.rng.sample(["python", "javascript", "sql", "css", "bash", "git", "go", "java", "react", "postgresql"], 3),
            "category_id": ctx.rng.randint(1, 40)}
    return _req(ctx, "POST", ctx.choice(("/api/posts", "/posts.json", "/api/v1/questions", "/api/forum/topics")), body=_jdump(ctx, body), ctype="application/json")


_FILE_STEMS = ("report-2024_Q3", "invoice_{n}", "Rechnung-{n}", "photo {n}", "IMG_{n}", "CV - {name}", "résumé_{name}", "contract v2 (final)",
               "meeting-notes_2024-05-17", "data.export.{n}", "Screenshot 2024-06-03 at 14.22.51", "presentation_FINAL_final", "budget-FY25",
               "README", "backup_{n}", "scan0001", "Präsentation März", "発注書_{n}", "отчёт-{n}", "tax return 2023")
_FILE_EXTS = ("pdf", "docx", "xlsx", "csv", "png", "jpg", "jpeg", "zip", "txt", "pptx", "json", "mp4", "heic", "odt", "tar.gz", "md", "svg", "webp")


def _filename(ctx: _Ctx) -> str:
    f = ctx.fk()
    stem = ctx.choice(_FILE_STEMS).format(n=ctx.rng.randint(1, 99999), name=f.last_name())
    return f"{stem}.{ctx.choice(_FILE_EXTS)}"


def _rel_path(ctx: _Ctx) -> str:
    dirs = ctx.rng.sample(["documents", "2024", "Q3", "invoices", "shared", "team-alpha", "exports", "photos", "Projects", "clients/acme", "archive", "uploads/avatars"], ctx.rng.randint(0, 3))
    return "/".join(dirs + [_filename(ctx)])


@_template
def t_file_download(ctx: _Ctx) -> dict:
    r = ctx.rng.random()
    if r < 0.4:
        params = [(ctx.choice(("file", "filename", "name", "doc", "attachment")), _filename(ctx))]
        if ctx.chance(0.5):
            params.append(("disposition", ctx.choice(("attachment", "inline"))))
        path = ctx.choice(("/download", "/files/get", "/api/documents/download", "/attachments"))
    elif r < 0.7:
        params = [("path", "/" + _rel_path(ctx) if ctx.chance(0.5) else _rel_path(ctx)), ("version", str(ctx.rng.randint(1, 12)))]
        path = ctx.choice(("/api/v1/storage/download", "/webdav/get", "/drive/file"))
    else:
        fn = _filename(ctx)
        params = [("response-content-disposition", f'attachment; filename="{fn}"'), ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                  ("X-Amz-Credential", f"AKIA{ctx.alnum(16, string.ascii_uppercase + string.digits)}/20240611/eu-west-1/s3/aws4_request"),
                  ("X-Amz-Date", "20240611T101500Z"), ("X-Amz-Expires", "3600"), ("X-Amz-SignedHeaders", "host"), ("X-Amz-Signature", ctx.hexs(64))]
        path = "/" + quote(_rel_path(ctx))
    return _req(ctx, "GET", path, params, accept="application/pdf,*/*")


@_template
def t_multipart_upload(ctx: _Ctx) -> dict:
    f = ctx.fk(ctx.locale())
    boundary = ctx.choice(("----WebKitFormBoundary" + ctx.alnum(16), "----geckoformboundary" + ctx.hexs(28), "-" * 26 + str(ctx.rng.randint(10**20, 10**21)), ctx.alnum(30)))
    fields = [("title", f.sentence(nb_words=ctx.rng.randint(2, 6)).rstrip(".")), ("description", _free_text(ctx, None, ctx.rng.randint(1, 2)))]
    if ctx.chance(0.5):
        fields.append(("folder_id", str(ctx.rng.randint(1, 9999))))
    if ctx.chance(0.4):
        fields.append(("tags", ",".join(f.words(3))))
    fn = _filename(ctx)
    ext = fn.rsplit(".", 1)[-1]
    if ext in ("csv",):
        ftype, content = "text/csv", "id,name,email\n" + "\n".join(f"{i},{f.name()},{f.email()}" for i in range(1, ctx.rng.randint(2, 5)))
    elif ext in ("json",):
        ftype, content = "application/json", json.dumps({"name": f.name(), "items": f.words(3)})
    elif ext in ("md", "txt"):
        ftype, content = "text/plain", f.paragraph()
    elif ext == "svg":
        ftype, content = "image/svg+xml", '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><circle cx="8" cy="8" r="7" fill="#3b82f6"/></svg>'
    else:
        fn = fn.rsplit(".", 1)[0] + ".txt"
        ftype, content = "text/plain", f.paragraph()
    lines = []
    for k, v in fields:
        lines += [f"--{boundary}", f'Content-Disposition: form-data; name="{k}"', "", v]
    lines += [f"--{boundary}", f'Content-Disposition: form-data; name="{ctx.choice(("file", "upload", "attachment", "files[]"))}"; filename="{fn}"', f"Content-Type: {ftype}", "", content, f"--{boundary}--", ""]
    body = "\r\n".join(lines)
    return _req(ctx, "POST", ctx.choice(("/upload", "/api/files", "/api/v1/attachments", "/media/upload", "/documents/new")), body=body,
                ctype=f"multipart/form-data; boundary={boundary}", ua=ctx.browser_ua())


@_template
def t_data_uri_blob(ctx: _Ctx) -> dict:
    raw = bytes(ctx.rng.getrandbits(8) for _ in range(ctx.rng.randint(24, 300)))
    mime = ctx.choice(("image/png", "image/jpeg", "image/webp", "application/pdf", "image/gif"))
    head = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff\xe0", "image/gif": b"GIF89a", "application/pdf": b"%PDF-1.7\n", "image/webp": b"RIFF\x00\x00\x00\x00WEBP"}[mime]
    b64 = base64.b64encode(head + raw).decode()
    body = {ctx.choice(("avatar", "image", "photo", "signature", "attachment")): f"data:{mime};base64,{b64}",
            "sha256": ctx.hexs(64), "md5": ctx.hexs(32), "size": len(raw) + len(head)}
    if ctx.chance(0.4):
        body["thumbnail_hex"] = raw[:32].hex()
    if ctx.chance(0.3):
        body["crop"] = {"x": ctx.rng.randint(0, 100), "y": ctx.rng.randint(0, 100), "w": 256, "h": 256}
    if ctx.chance(0.3):
        params = [("image", body[next(iter(body))]), ("checksum", body["sha256"])]
        return _req(ctx, "POST", "/profile/avatar", body=_qs(ctx, params), ctype="application/x-www-form-urlencoded")
    return _req(ctx, "POST", ctx.choice(("/api/me/avatar", "/api/v1/uploads/inline", "/api/signatures", "/api/ocr")), body=_jdump(ctx, body), ctype="application/json")


@_template
def t_search_operators(ctx: _Ctx) -> dict:
    f = ctx.fk(ctx.locale(0.6))
    w = lambda: ctx.choice(f.words(3))
    q = ctx.choice((
        f'site:{ctx.choice(("github.com", "stackoverflow.com", "example.org", "docs.python.org"))} {w()} {w()}',
        f'"{w()} {w()}" -{w()}',
        f"{w()} OR {w()} filetype:pdf",
        f'intitle:"{w()}" after:2023-01-01',
        f"{w()} AND ({w()} OR {w()}) -sale",
        f'"{f.name()}" linkedin',
        f"{w()}* near:{f.city()}",
        f"{w()} price:<50 rating:>=4",
        f"how to {w()} without {w()}?",
        f"author:{f.user_name()} is:open label:\"good first issue\"",
        f"{w()} vs {w()} 2024",
        f"#{w()} @{f.user_name()}",
        f"{f.street_address()}, {f.city()}",
    ))
    params = [(ctx.choice(("q", "query", "search_query", "p", "wd", "text")), q)]
    if ctx.chance(0.4):
        params.append(("hl", ctx.choice(("en", "de", "fr", "ja", "pt-BR"))))
    if ctx.chance(0.3):
        params.append(("tbs", ctx.choice(("qdr:w", "qdr:m", "li:1"))))
    if ctx.chance(0.3):
        params.append(("start", str(ctx.rng.randint(1, 9) * 10)))
    return _req(ctx, "GET", ctx.choice(("/search", "/s", "/results", "/api/search")), params)


def _url_with_query(ctx: _Ctx) -> str:
    f = ctx.fk()
    base = ctx.choice(("https://www.example.com", "https://app.example.io", "https://shop.example", "https://partner.example.net", "https://hooks.example.dev"))
    path = ctx.choice(("/account/orders", "/checkout", "/dashboard", "/settings/billing", f"/blog/{f.slug()}", "/products/" + str(ctx.rng.randint(1, 99999)), "/"))
    qs = urlencode([(k, v) for k, v in (("tab", ctx.choice(("overview", "invoices"))), ("page", str(ctx.rng.randint(1, 9))), ("ref", f.slug()), ("lang", "de"))
                    if ctx.chance(0.5)])
    frag = ctx.choice(("", "", "#section-2", "#reviews"))
    return base + path + ("?" + qs if qs else "") + frag


@_template
def t_redirect_params(ctx: _Ctx) -> dict:
    target = _url_with_query(ctx) if ctx.chance(0.6) else ctx.choice(("/account/orders?status=open", "/cart", "/", "/settings#security"))
    params = [(ctx.choice(("return_to", "returnUrl", "redirect", "next", "continue", "callback", "RelayState", "service", "goto", "back")), target)]
    if ctx.chance(0.4):
        params.append(("lang", ctx.choice(("en", "de", "fr"))))
    if ctx.chance(0.3):
        params.append(("reason", ctx.choice(("session_expired", "logout", "signup"))))
    return _req(ctx, "GET", ctx.choice(("/login", "/logout", "/sso/start", "/auth/signin", "/cas/login", "/account/switch")), params, ua=ctx.browser_ua())


@_template
def t_webhook_config(ctx: _Ctx) -> dict:
    body = {
        "url": ctx.choice(("https://hooks.slack.com/services/T" + ctx.alnum(8, string.ascii_uppercase + string.digits) + "/B" + ctx.alnum(8, string.ascii_uppercase + string.digits) + "/" + ctx.alnum(24),
                           "https://example.com/webhooks/stripe?source=prod&v=2", _url_with_query(ctx), "https://api.example.io/v1/callbacks/" + ctx.uuid())),
        "events": ctx.rng.sample(["order.created", "order.updated", "order.deleted", "customer.created", "invoice.paid", "refund.issued", "push", "pull_request"], ctx.rng.randint(1, 4)),
        "secret": "whsec_" + ctx.alnum(32), "active": ctx.chance(0.9), "content_type": ctx.choice(("json", "form")),
        "description": ctx.choice(("Notify fulfilment service", "Sync to CRM", "Slack #alerts channel", "")),
    }
    if ctx.chance(0.3):
        body["headers"] = {"X-Custom-Token": ctx.alnum(20)}
    return _req(ctx, ctx.choice(("POST", "PUT")), ctx.choice(("/api/v1/webhooks", "/api/hooks", "/repos/acme/shop/hooks", "/admin/api/2024-07/webhooks.json")),
                body=_jdump(ctx, body), ctype="application/json", ua=ctx.choice(_APP_UAS))


_PHONE_FORMATS = ("+49 30 {a}{b}", "+33 1 {a2} {b2}", "+1 (415) 555-{b}", "+44 20 7946 {b}", "+81 3-{a}-{b}", "+86 138 {a} {b}", "+91 98{a} {b}",
                  "+55 11 9{a}-{b}", "+7 (495) {a}-{b2}-{c2}", "+972-3-{a}{b}", "0049 (0)89 {a}-{b}", "+34 6{a2} {a} {b}")


def _intl_phone(ctx: _Ctx) -> str:
    d = lambda k: "".join(str(ctx.rng.randint(0, 9)) for _ in range(k))
    return ctx.choice(_PHONE_FORMATS).format(a=d(3), b=d(4), a2=d(2), b2=d(2) + " " + d(2), c2=d(2))


def _plus_email(ctx: _Ctx, loc: str = "en_US") -> str:
    f = ctx.fk(loc)
    user, dom = f.email().split("@")
    r = ctx.rng.random()
    if r < 0.4:
        user += "+" + ctx.choice(("newsletter", "shop", "2024", "amazon", "test", f.word() if loc.startswith("en") else "news"))
    elif r < 0.55:
        user = f.first_name().lower()[:1] + "." + user
    elif r < 0.65:
        user = user.upper()
    return f"{user}@{ctx.choice((dom, 'gmail.com', 'outlook.com', 'mail.example.co.uk', 'uni-example.de', 'web.de', 'yahoo.co.jp'))}"


@_template
def t_contacts_email_phone(ctx: _Ctx) -> dict:
    loc = ctx.locale()
    f = ctx.fk(loc)
    r = ctx.rng.random()
    if r < 0.35:
        params = [("email", _plus_email(ctx, loc)), ("list_id", ctx.hexs(10)), ("source", ctx.choice(("footer", "popup", "checkout")))]
        if ctx.chance(0.5):
            params.append(("first_name", f.first_name()))
        return _req(ctx, "POST", ctx.choice(("/newsletter/subscribe", "/api/subscribe", "/subscribe/post")), body=_qs(ctx, params), ctype="application/x-www-form-urlencoded", locale=loc)
    if r < 0.55:
        return _req(ctx, "GET", ctx.choice(("/api/users/lookup", "/api/contacts/search", "/unsubscribe")), [("email", _plus_email(ctx, loc))] + ([("token", ctx.b64url(16))] if ctx.chance(0.5) else []), locale=loc)
    body = {"contacts": [{"name": f.name(), "email": _plus_email(ctx, loc), "phone": ctx.choice((_intl_phone(ctx), f.phone_number())),
                          "company": f.company(), "job_title": f.job() if ctx.chance(0.5) else None, "notes": ctx.choice(("", "Met at the conference", f.sentence()))}
                         for _ in range(ctx.rng.randint(1, 3))]}
    return _req(ctx, "POST", "/api/v3/contacts/batch", body=_jdump(ctx, body), ctype="application/json", locale=loc)


@_template
def t_money_dates(ctx: _Ctx) -> dict:
    f = ctx.fk()
    d1 = ctx.dt()
    fmt = ctx.choice(("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%d %b %Y", "%B %d, %Y", "%Y-%m-%dT00:00:00Z", "%Y-%m-%dT%H:%M:%S+02:00"))
    amount = ctx.rng.uniform(0.5, 99999)
    money = ctx.choice((f"{amount:.2f}", f"{amount:,.2f}", f"{amount:,.2f}".replace(",", " ").replace(".", ","), f"{amount:,.2f}".replace(",", "X").replace(".", ",").replace("X", "."),
                        f"${amount:,.2f}", f"€{amount:.2f}", f"{amount:.0f} ¥", f"£{amount:.2f}", f"{amount:.2f} EUR", f"R$ {amount:,.2f}", f"-{amount:.2f}", f"{amount:.4f}"))
    params = [("from", d1.strftime(fmt)), ("to", (d1 + timedelta(days=ctx.rng.randint(0, 90), seconds=ctx.rng.randint(0, 86399))).strftime(fmt)),
              (ctx.choice(("amount", "min_amount", "total", "price")), money), ("currency", f.currency_code())]
    if ctx.chance(0.4):
        params.append(("tz", ctx.choice(("Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC", "+05:30"))))
    if ctx.chance(0.3):
        params.append(("percent", ctx.choice(("12.5%", "0.75", "-3%", "100%"))))
    if ctx.chance(0.3):
        params.append(("interval", ctx.choice(("1d", "P1M", "PT15M", "weekly", "Q3"))))
    if ctx.chance(0.3):
        body = {"transaction": {"amount": round(amount, 2), "display": money, "date": d1.isoformat(), "fee": "0.30", "exchange_rate": round(ctx.rng.uniform(0.5, 160), 6), "memo": ctx.choice(("Invoice 2024/117", "Rent – June", "Refund (partial)", "coffee ☕"))}}
        return _req(ctx, "POST", "/api/transactions", body=_jdump(ctx, body), ctype="application/json")
    return _req(ctx, "GET", ctx.choice(("/api/reports/sales", "/reports", "/api/v1/transactions", "/statements/export")), params)


@_template
def t_geo_coords(ctx: _Ctx) -> dict:
    f = ctx.fk()
    lat, lng = float(f.latitude()), float(f.longitude())
    r = ctx.rng.random()
    if r < 0.4:
        params = [("lat", f"{lat:.6f}"), ("lng", f"{lng:.6f}"), ("radius", ctx.choice(("500", "5km", "10mi", "2.5"))), ("limit", str(ctx.rng.randint(5, 50)))]
    elif r < 0.6:
        params = [("bbox", f"{lng:.4f},{lat:.4f},{lng + 0.05:.4f},{lat + 0.05:.4f}"), ("zoom", str(ctx.rng.randint(3, 18)))]
    elif r < 0.8:
        params = [("ll", f"{lat:.5f},{lng:.5f}"), ("q", ctx.choice(("coffee", "pharmacy", "Tankstelle", "ramen", "ATM")))]
    else:
        params = [("center", f"{lat:.5f} {lng:.5f}"), ("geo", f"POINT({lng:.5f} {lat:.5f})"), ("address", f.address().replace("\n", ", "))]
    if ctx.chance(0.3):
        body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(lng, 6), round(lat, 6)]}, "properties": {"name": f.city(), "accuracy_m": ctx.rng.randint(3, 80)}}
        return _req(ctx, "POST", "/api/locations", body=_jdump(ctx, body), ctype=ctx.choice(("application/json", "application/geo+json")))
    return _req(ctx, "GET", ctx.choice(("/api/stores/nearby", "/maps/api/place/nearbysearch/json", "/api/v1/geo/search", "/tiles")), params)


@_template
def t_csv_body(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.5)
    f = ctx.fk(loc)
    sep = ctx.choice((",", ";", "\t"))
    header = ["id", "name", "email", "city", "amount", "date", "notes"]
    rows = [sep.join(header)]
    for i in range(ctx.rng.randint(1, 8)):
        note = ctx.choice(("", "VIP", "\"Call back, after 5pm\"", "n/a", "O'Brien's account", "paid 50% upfront"))
        rows.append(sep.join([str(i + 1), f.name(), f.email(), f.city(), f"{ctx.rng.uniform(1, 999):.2f}", ctx.date().isoformat(), note]))
    body = "\r\n".join(rows) + "\r\n"
    if ctx.chance(0.3):
        return _req(ctx, "POST", "/api/import/preview", body=_jdump(ctx, {"line": rows[1], "delimiter": sep, "has_header": True}), ctype="application/json", locale=loc)
    return _req(ctx, "POST", ctx.choice(("/api/import/customers", "/import", "/api/v1/bulk/upload")), body=body,
                ctype=ctx.choice(("text/csv", "text/csv; charset=utf-8")), locale=loc)


@_template
def t_bot_crawl(ctx: _Ctx) -> dict:
    f = ctx.fk()
    path = ctx.choice(("/robots.txt", "/sitemap.xml", "/sitemap_index.xml", "/feed.xml", "/", f"/products/{f.slug()}", f"/blog/{ctx.date().year}/{f.slug()}",
                       "/.well-known/security.txt", "/favicon.ico", "/ads.txt", "/humans.txt", "/health", "/healthz", "/metrics", "/status"))
    params = None
    if ctx.chance(0.3):
        params = [(ctx.choice(("page", "p", "ver", "v", "_")), str(ctx.rng.randint(1, 1_700_000_000)))]
    ua = ctx.choice(_BOT_UAS) if path not in ("/health", "/healthz", "/metrics", "/status") else ctx.choice(("kube-probe/1.30", "ELB-HealthChecker/2.0", "Prometheus/2.53.0", "GoogleHC/1.0", "Consul Health Check"))
    return _req(ctx, ctx.choice(("GET", "GET", "GET", "HEAD")), path, params, ua=ua, cookie="", referer="", accept=ctx.choice(("*/*", "text/html,application/xhtml+xml", "application/xml,text/xml;q=0.9")), locale="en_US")


@_template
def t_referer_long(ctx: _Ctx) -> dict:
    f = ctx.fk(ctx.locale())
    words = " ".join(f.words(ctx.rng.randint(1, 5)))
    r = ctx.rng.random()
    if r < 0.35:
        ref = "https://www.google.com/search?" + urlencode([("q", words), ("sca_esv", ctx.hexs(16)), ("sxsrf", "ADLYWI" + ctx.b64url(40)), ("ei", ctx.b64url(16)),
                                                          ("ved", "0ahUKEw" + ctx.b64url(40)), ("uact", "5"), ("oq", words[: ctx.rng.randint(1, len(words))]), ("gs_lp", "Egxnd3Mtd2l6LXNlcnAi" + ctx.b64url(60)), ("sclient", "gws-wiz-serp")])
    elif r < 0.5:
        ref = "https://www.bing.com/search?" + urlencode([("q", words), ("form", "QBLH"), ("sp", "-1"), ("pq", words), ("sc", "10-12"), ("qs", "n"), ("cvid", ctx.hexs(32).upper())])
    elif r < 0.65:
        ref = "https://l.facebook.com/l.php?" + urlencode([("u", _url_with_query(ctx)), ("h", "AT" + ctx.b64url(60))])
    elif r < 0.8:
        ref = "https://duckduckgo.com/?" + urlencode([("q", words), ("t", "h_"), ("ia", "web")])
    else:
        ref = _url_with_query(ctx)
    return _req(ctx, "GET", ctx.choice(("/", f"/products/{f.slug()}" if hasattr(f, "slug") else "/products", "/blog", "/pricing", "/de/angebote")), None, referer=ref, ua=ctx.browser_ua())


@_template
def t_api_keys(ctx: _Ctx) -> dict:
    key = ctx.choice((
        "sk_live_" + ctx.alnum(24), "pk_test_" + ctx.alnum(24), "AIza" + ctx.b64url(26)[:35], "ghp_" + ctx.alnum(36), "xoxb-" + "-".join(str(ctx.rng.randint(10**10, 10**11)) for _ in range(2)) + "-" + ctx.alnum(24),
        ctx.hexs(32), ctx.uuid(), "key-" + ctx.hexs(32), base64.b64encode(ctx.alnum(30).encode()).decode(), "glpat-" + ctx.alnum(20), "SG." + ctx.b64url(16) + "." + ctx.b64url(32),
    ))
    r = ctx.rng.random()
    extra = []
    if r < 0.45:
        params = [(ctx.choice(("api_key", "apikey", "key", "access_token", "token", "appid")), key), ("format", ctx.choice(("json", "xml", "csv")))]
        if ctx.chance(0.5):
            params.append(("units", ctx.choice(("metric", "imperial"))))
    else:
        params = [("fields", ctx.choice(("id,name,email", "id,status,created_at", "*"))), ("limit", str(ctx.rng.randint(1, 200)))]
        extra.append((ctx.choice(("x-api-key", "x-auth-token", "x-app-key", "apikey", "x-goog-api-key")), key))
    return _req(ctx, "GET", ctx.choice(("/api/v2/data", "/data/2.5/weather", "/v1/forecast", "/api/v1/customers", "/maps/api/geocode/json")), params, extra=extra,
                ua=ctx.choice(_APP_UAS), accept=_ACCEPT_JSON)


@_template
def t_semver_packages(ctx: _Ctx) -> dict:
    v = lambda: f"{ctx.rng.randint(0, 20)}.{ctx.rng.randint(0, 40)}.{ctx.rng.randint(0, 30)}"
    ver = ctx.choice((v(), v() + "-beta." + str(ctx.rng.randint(1, 9)), v() + "-rc.1+build." + str(ctx.rng.randint(1, 999)), "v" + v(), v() + ".post1", v() + "a3", "latest", "2024.06.1"))
    rng_spec = ctx.choice((f"^{v()}", f"~{v()}", f">={v()} <{ctx.rng.randint(2, 30)}.0.0", f"{v()} || {v()}", f"~={v()}", f"=={v()}", "*", f"{ctx.rng.randint(1, 9)}.x"))
    pkg = ctx.choice(("react", "@types/node", "lodash", "numpy", "django", "serde", "golang.org/x/net", "org.springframework:spring-core", "left-pad", "@angular/core", "requests", "tokio"))
    r = ctx.rng.random()
    if r < 0.5:
        return _req(ctx, "GET", "/api/packages/" + quote(pkg, safe="@/"), [("version", ver), ("range", rng_spec), ("include", ctx.choice(("deps", "deps,devDeps", "none")))], ua=ctx.choice(_APP_UAS))
    body = {"name": ctx.fk().slug(), "version": ver, "dependencies": {pkg: rng_spec, "typescript": f"^{v()}"}, "engines": {"node": ">=18"}, "private": True,
            "scripts": {"build": "tsc -p . && vite build", "test": "vitest run --coverage", "lint": "eslint 'src/**/*.{ts,tsx}'"}}
    return _req(ctx, "POST", ctx.choice(("/api/v1/audit", "/api/lockfile/resolve", "/-/npm/v1/security/audits/quick")), body=_jdump(ctx, body), ctype="application/json", ua=ctx.choice(_APP_UAS))


@_template
def t_cloud_resources(ctx: _Ctx) -> dict:
    ns = ctx.choice(("default", "kube-system", "payments-prod", "team-a", "monitoring", "staging"))
    app = ctx.choice(("web", "api-gateway", "checkout-svc", "redis-cache", "worker"))
    r = ctx.rng.random()
    if r < 0.4:
        params = [("labelSelector", ctx.choice((f"app={app},tier in (frontend,backend)", f"app.kubernetes.io/name={app}", f"environment!=dev,release=v{ctx.rng.randint(1, 9)}"))),
                  ("fieldSelector", ctx.choice(("status.phase=Running", "spec.nodeName=ip-10-0-1-23.eu-west-1.compute.internal", "metadata.namespace!=kube-system"))),
                  ("limit", "500")]
        return _req(ctx, "GET", f"/api/v1/namespaces/{ns}/pods", params, ua="kubectl/v1.30.2 (linux/amd64) kubernetes/39683505", accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    if r < 0.7:
        arn = ctx.choice((f"arn:aws:s3:::{app}-assets-{ctx.rng.randint(100, 999)}/*", f"arn:aws:iam::{ctx.rng.randint(10**11, 10**12)}:role/{app}-task-role",
                          f"arn:aws:lambda:eu-central-1:{ctx.rng.randint(10**11, 10**12)}:function:{app}:live"))
        body = {"resource": arn, "gcp": f"projects/my-project-{ctx.rng.randint(1000, 9999)}/locations/europe-west1/services/{app}",
                "azure": f"/subscriptions/{ctx.uuid()}/resourceGroups/rg-{ns}/providers/Microsoft.Web/sites/{app}", "region": ctx.choice(("eu-west-1", "us-east-1", "ap-southeast-2")),
                "tags": {"owner": ctx.fk().user_name(), "cost-center": str(ctx.rng.randint(1000, 9999))}}
        return _req(ctx, "POST", "/api/inventory/resources", body=_jdump(ctx, body), ctype="application/json", ua=ctx.choice(_APP_UAS))
    patch = {"metadata": {"labels": {"app": app, "version": f"v{ctx.rng.randint(1, 5)}.{ctx.rng.randint(0, 20)}"}, "annotations": {"kubectl.kubernetes.io/restartedAt": ctx.dt().isoformat() + "Z"}},
             "spec": {"replicas": ctx.rng.randint(1, 12), "template": {"spec": {"containers": [{"name": app, "image": f"registry.example.com/{ns}/{app}:{ctx.hexs(7)}", "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}}]}}}}
    return _req(ctx, "PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/{app}", body=_jdump(ctx, patch), ctype="application/strategic-merge-patch+json", ua="kubectl/v1.30.2 (linux/amd64) kubernetes/39683505")


@_template
def t_filter_dsl(ctx: _Ctx) -> dict:
    f = ctx.fk()
    status = ctx.choice(("open", "closed", "pending", "shipped", "draft"))
    expr = ctx.choice((
        f"price gt {ctx.rng.randint(1, 100)} and status eq '{status}'",
        f"status:{status} AND created:>={ctx.date().isoformat()}",
        f"(category = \"{f.word()}\" OR category = \"{f.word()}\") AND stock > 0",
        f"name ~ '{f.word()}*' and priority in (high, medium)",
        "assignee = currentUser() AND resolution = Unresolved ORDER BY priority DESC, updated DESC",
        "project = SHOP AND labels in (frontend, \"tech-debt\") AND sprint in openSprints()",
        f"rating>=4;brand=={f.company().split()[0]};price=lt=100",
        f"tags:\"{f.word()}\" -tags:archived",
        f"amount between {ctx.rng.randint(1, 50)} and {ctx.rng.randint(51, 500)}",
        "updated_at > now-7d | count by status",
    ))
    params = [(ctx.choice(("filter", "q", "jql", "where", "search", "query")), expr)]
    params.append((ctx.choice(("sort", "order_by", "orderBy")), ctx.choice(("-created_at,name", "name asc", "+price,-rating", "updated_at:desc", "-id"))))
    if ctx.chance(0.5):
        params.append(("fields", ctx.choice(("id,name,status", "key,summary,assignee", "*,-internal_notes"))))
    if ctx.chance(0.5):
        params.append(("page[size]", str(ctx.choice((10, 25, 50)))))
        params.append(("page[number]", str(ctx.rng.randint(1, 20))))
    if ctx.chance(0.3):
        params.append(("include", "author,comments.author"))
    if ctx.chance(0.3):
        body = {"filter": expr, "sort": [{"field": "created_at", "order": "desc"}], "page": {"size": 25, "cursor": None}}
        return _req(ctx, "POST", "/api/search/issues", body=_jdump(ctx, body), ctype="application/json")
    return _req(ctx, "GET", ctx.choice(("/api/items", "/rest/api/2/search", "/api/v1/tickets", "/api/orders")), params, accept=_ACCEPT_JSON)


_ODATA_NAMES = ("Milk", "Bread", "Café au lait", "O''Neil Tea", "Rock 'n'' Roll")


@_template
def t_odata_query(ctx: _Ctx) -> dict:
    f = ctx.fk()
    ent = ctx.choice(("Products", "Customers", "Orders", "People", "Employees"))
    flt = ctx.choice((
        "Name eq '%s'" % ctx.choice(_ODATA_NAMES),
        f"Price lt {ctx.rng.randint(5, 200)}.00 and Discontinued eq false",
        f"startswith(CompanyName, '{f.company()[:4]}')",
        f"contains(tolower(Title), '{f.word()}')",
        f"OrderDate ge {ctx.date().isoformat()}T00:00:00Z",
        f"Address/City eq '{f.city().replace(chr(39), chr(39) * 2)}'",
        "Tags/any(t: t eq 'organic')",
        f"year(BirthDate) gt {ctx.rng.randint(1950, 2000)}",
    ))
    params = [("$filter", flt), ("$select", ctx.choice(("Name,Price", "ID,CompanyName,City", "*"))), ("$top", str(ctx.choice((10, 20, 50, 100))))]
    if ctx.chance(0.6):
        params.append(("$orderby", ctx.choice(("Price desc", "Name", "OrderDate desc,ID"))))
    if ctx.chance(0.4):
        params.append(("$expand", ctx.choice(("Category", "Orders($select=ID,Total;$top=5)", "Supplier,Category"))))
    if ctx.chance(0.4):
        params.append(("$skip", str(ctx.rng.randint(0, 10) * 10)))
    if ctx.chance(0.3):
        params.append(("$count", "true"))
    if ctx.chance(0.2):
        params.append(("$search", f'"{f.word()}" OR {f.word()}'))
    return _req(ctx, "GET", ctx.choice((f"/odata/{ent}", f"/sap/opu/odata/sap/API_{ent.upper()}_SRV/{ent}", f"/v4/TripPinService/{ent}", f"/api/data/v9.2/{ent.lower()}")), params,
                accept="application/json;odata.metadata=minimal")


@_template
def t_json_patch(ctx: _Ctx) -> dict:
    f = ctx.fk(ctx.locale())
    ops = []
    for _ in range(ctx.rng.randint(1, 5)):
        op = ctx.choice(("replace", "add", "remove", "test", "copy", "move"))
        path = ctx.choice(("/email", "/name", "/address/city", "/tags/-", "/items/0/quantity", "/preferences/theme", "/phones/1", "/metadata/~1source", "/status", "/description"))
        d = {"op": op, "path": path}
        if op in ("replace", "add", "test"):
            d["value"] = ctx.choice((f.email(), f.name(), f.city(), ctx.rng.randint(1, 10), True, None, {"k": f.word()}, [f.word(), f.word()], f.sentence()))
        elif op in ("copy", "move"):
            d["from"] = ctx.choice(("/old_email", "/tags/0", "/draft/body"))
        ops.append(d)
    if ctx.chance(0.3):
        body = {"name": f.name(), "address": {"city": f.city(), "zip": None}, "tags": [f.word()]}
        return _req(ctx, "PATCH", f"/api/users/{ctx.uuid()}", body=_jdump(ctx, body), ctype="application/merge-patch+json")
    return _req(ctx, "PATCH", ctx.choice((f"/api/users/{ctx.uuid()}", f"/api/v1/products/{ctx.rng.randint(1, 99999)}", "/api/me/settings", f"/scim/v2/Users/{ctx.uuid()}")),
                body=_jdump(ctx, ops), ctype="application/json-patch+json")


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@_template
def t_soap_xml(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.5)
    f = ctx.fk(loc)
    r = ctx.rng.random()
    if r < 0.5:
        op = ctx.choice(("GetOrderStatus", "CreateCustomer", "CheckAvailability", "GetQuote"))
        inner = "".join(f"<tns:{k}>{_xml_escape(str(v))}</tns:{k}>" for k, v in (
            ("CustomerName", f.name()), ("Email", f.email()), ("OrderId", ctx.rng.randint(10000, 99999)), ("Amount", f"{ctx.rng.uniform(1, 999):.2f}"),
            ("Comment", ctx.choice(("Deliver after 5pm & ring twice", "Fragile <glass>", f.sentence(), "Tom's order")))) if ctx.chance(0.8))
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:tns="http://example.com/ws/orders">'
                f"<soap:Header><tns:AuthToken>{ctx.alnum(32)}</tns:AuthToken></soap:Header><soap:Body><tns:{op}>{inner}</tns:{op}></soap:Body></soap:Envelope>")
        return _req(ctx, "POST", ctx.choice(("/ws/OrderService", "/services/soap", "/OrderService.asmx")), body=body, ctype=ctx.choice(("text/xml; charset=utf-8", "application/soap+xml; charset=utf-8")),
                    extra=[("soapaction", f'"http://example.com/ws/orders/{op}"')], ua=ctx.choice(_APP_UAS), locale=loc)
    items = "".join(f'<item sku="{ctx.alnum(6).upper()}" qty="{ctx.rng.randint(1, 5)}"><name>{_xml_escape(f.word())}</name><price currency="EUR">{ctx.rng.uniform(1, 99):.2f}</price></item>' for _ in range(ctx.rng.randint(1, 4)))
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<order id="{ctx.uuid()}" created="{ctx.dt().isoformat()}">'
            f"<customer><name>{_xml_escape(f.name())}</name><email>{_xml_escape(f.email())}</email><address>{_xml_escape(f.address().replace(chr(10), ', '))}</address></customer>"
            f"<items>{items}</items><note>{_xml_escape(_free_text(ctx, loc, 1))}</note></order>")
    return _req(ctx, "POST", ctx.choice(("/api/orders.xml", "/edi/inbound", "/api/v1/import/xml")), body=body, ctype=ctx.choice(("application/xml", "text/xml")), locale=loc)


@_template
def t_text_plain(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.4)
    f = ctx.fk(loc)
    r = ctx.rng.random()
    if r < 0.4:
        body = _free_text(ctx, loc, ctx.rng.randint(1, 6))
    elif r < 0.6:
        body = "\n".join(f"{ctx.dt().isoformat()} INFO [{ctx.choice(('main', 'worker-3', 'http-nio-8080-exec-7'))}] {ctx.choice(('User logged in', 'Order created', 'Cache refreshed', 'Job finished in 231 ms', 'GET /api/items 200'))} id={ctx.rng.randint(1, 9999)}"
                         for _ in range(ctx.rng.randint(1, 5)))
    elif r < 0.8:
        body = f"To do:\n- {f.sentence()}\n- {f.sentence()}\n* call {f.name()} re: invoice #{ctx.rng.randint(100, 999)}\n\n50% done, ETA Friday."
    else:
        body = f.paragraph(nb_sentences=ctx.rng.randint(2, 6))
    return _req(ctx, ctx.choice(("POST", "PUT")), ctx.choice(("/api/notes", "/api/logs/ingest", "/paste", f"/api/v1/documents/{ctx.uuid()}/content", "/api/translate")), body=body,
                ctype=ctx.choice(("text/plain", "text/plain; charset=utf-8", "text/markdown")), locale=loc)


@_template
def t_custom_headers(ctx: _Ctx) -> dict:
    extra = [("x-request-id", ctx.uuid()), ("x-correlation-id", ctx.choice((ctx.uuid(), ctx.hexs(32), "req-" + ctx.alnum(12))))]
    pool = [
        ("x-client-version", ctx.choice(("5.14.2", "web-2024.06.11-3f2a9c1", "ios/17.5 app/5.13.0 (build 4321)", "android-5.12.0-rc2"))),
        ("x-device-id", ctx.choice((ctx.uuid().upper(), ctx.hexs(16), ctx.alnum(22)))),
        ("x-platform", ctx.choice(("ios", "android", "web", "desktop-electron"))),
        ("x-timezone", ctx.choice(("Europe/Berlin", "America/Sao_Paulo", "Asia/Tokyo", "Australia/Sydney"))),
        ("x-locale", ctx.choice(("de-DE", "ja-JP", "pt-BR", "ar-EG", "en-GB"))),
        ("x-requested-with", "XMLHttpRequest"),
        ("x-csrf-token", ctx.b64url(32)),
        ("x-amzn-trace-id", f"Root=1-{ctx.hexs(8)}-{ctx.hexs(24)};Parent={ctx.hexs(16)};Sampled=1"),
        ("traceparent", f"00-{ctx.hexs(32)}-{ctx.hexs(16)}-01"),
        ("x-b3-traceid", ctx.hexs(32)),
        ("x-forwarded-proto", "https"),
        ("x-real-ip", ctx.ip()),
        ("x-tenant-id", ctx.choice(("acme-corp", "tenant_42", ctx.uuid()))),
        ("x-feature-flags", ctx.choice(("new-checkout=on; dark-mode=off", "beta,search-v2", "exp_123:B"))),
        ("x-app-build", str(ctx.rng.randint(1000, 99999))),
        ("x-idempotency-key", ctx.uuid()),
        ("x-shopify-shop-domain", "acme-store.myshopify.com"),
        ("x-github-event", ctx.choice(("push", "pull_request", "issues"))),
        ("x-hub-signature-256", "sha256=" + ctx.hexs(64)),
        ("sec-ch-ua", '"Chromium";v="126", "Google Chrome";v="126", "Not.A/Brand";v="24"'),
        ("sec-ch-ua-platform", '"Windows"'),
        ("sec-fetch-site", "same-origin"),
        ("dnt", "1"),
        ("if-none-match", f'W/"{ctx.hexs(16)}"'),
        ("origin", "https://" + ctx.choice(_HOSTS)),
    ]
    extra += ctx.rng.sample(pool, ctx.rng.randint(2, 7))
    params = [("include", ctx.choice(("profile", "settings,notifications", "badges")))] if ctx.chance(0.5) else None
    return _req(ctx, ctx.choice(("GET", "GET", "POST")), ctx.choice(("/api/v1/me", "/api/config", "/api/feature-flags", "/api/notifications", "/api/sync")), params,
                extra=extra, accept=_ACCEPT_JSON)


@_template
def t_pagination_cursor(ctx: _Ctx) -> dict:
    cur = ctx.choice((
        base64.b64encode(json.dumps({"id": ctx.rng.randint(1, 10**7), "ts": 1_700_000_000 + ctx.rng.randint(0, 4 * 10**7)}, separators=(",", ":")).encode()).decode(),
        base64.urlsafe_b64encode(f"cursor:v1:{ctx.rng.randint(1, 10**6)}".encode()).decode().rstrip("="),
        ctx.b64url(24), "YXJyYXljb25uZWN0aW9uOjk5", str(ctx.rng.randint(1, 10**12)), ctx.hexs(24),
    ))
    params = [(ctx.choice(("cursor", "after", "page_token", "pageToken", "starting_after", "next", "continuation")), cur), ("limit", str(ctx.choice((10, 20, 25, 50, 100))))]
    if ctx.chance(0.4):
        params.append(("fields", "id,title,created_at"))
    if ctx.chance(0.3):
        params.append(("since", ctx.dt().isoformat() + "Z"))
    return _req(ctx, "GET", ctx.choice(("/api/feed", "/api/v1/events", "/v1/charges", "/api/timeline", "/api/notifications")), params, accept=_ACCEPT_JSON)


@_template
def t_mobile_telemetry(ctx: _Ctx) -> dict:
    f = ctx.fk(ctx.locale())
    events = []
    for _ in range(ctx.rng.randint(1, 6)):
        events.append({"event": ctx.choice(("screen_view", "add_to_cart", "purchase", "search", "app_open", "button_tap", "push_opened", "select_content")),
                       "ts": 1_700_000_000_000 + ctx.rng.randint(0, 4 * 10**10),
                       "params": {"screen_name": ctx.choice(("Home", "ProductDetail", "Cart", "Checkout", "Settings")), "item_id": ctx.alnum(8), "value": _money(ctx, 0, 300),
                                  "search_term": ctx.choice(("", " ".join(f.words(2)))), "engagement_time_msec": ctx.rng.randint(10, 60000)}})
    body = {"app_instance_id": ctx.hexs(32), "user_id": ctx.choice((None, str(ctx.rng.randint(1, 10**7)))),
            "device": {"model": ctx.choice(("iPhone15,2", "SM-S918B", "Pixel 8", "iPad13,4")), "os": ctx.choice(("iOS 17.5", "Android 14")), "locale": f.locale() if hasattr(f, "locale") else "en_US",
                       "screen": ctx.choice(("1179x2556", "1080x2340", "2048x2732")), "carrier": ctx.choice(("Vodafone", "T-Mobile", "NTT DOCOMO", "Airtel", ""))},
            "app": {"version": f"{ctx.rng.randint(1, 9)}.{ctx.rng.randint(0, 30)}.{ctx.rng.randint(0, 9)}", "build": str(ctx.rng.randint(100, 9999))}, "events": events}
    return _req(ctx, "POST", ctx.choice(("/v1/batch", "/collect/app", "/api/analytics/events", "/i")), body=_jdump(ctx, body), ctype="application/json",
                ua=ctx.choice(_APP_UAS[:5]), cookie="", referer="", extra=[("x-device-id", ctx.uuid())])


@_template
def t_checkout_address_form(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.2)
    f = ctx.fk(loc)
    params = [
        ("checkout[email]", f.email()), ("checkout[shipping_address][first_name]", f.first_name()),
        ("checkout[shipping_address][last_name]", ctx.choice((f.last_name(), "O'Brien", "D'Souza", "Łukasiewicz", "Ó Súilleabháin"))),
        ("checkout[shipping_address][address1]", f.street_address()), ("checkout[shipping_address][address2]", ctx.choice(("", "Apt #4B", "c/o Smith & Sons", "Hinterhaus, 3. OG"))),
        ("checkout[shipping_address][city]", f.city()), ("checkout[shipping_address][zip]", f.postcode()), ("checkout[shipping_address][country]", loc[-2:]),
        ("checkout[shipping_address][phone]", f.phone_number()), ("checkout[note]", ctx.choice(("", "Leave with neighbour at #12", "Gate code: 1234#", "Bitte nicht klingeln – Baby schläft", _free_text(ctx, loc, 1)))),
        ("checkout[buyer_accepts_marketing]", ctx.choice(("0", "1"))), ("step", "shipping_method"),
    ]
    if ctx.chance(0.5):
        params.insert(0, ("authenticity_token", ctx.b64url(64)))
    return _req(ctx, "POST", f"/{ctx.rng.randint(10**7, 10**8)}/checkouts/{ctx.hexs(32)}", body=_qs(ctx, params), ctype="application/x-www-form-urlencoded", locale=loc, ua=ctx.browser_ua())


@_template
def t_i18n_paths(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.1)
    f = ctx.fk(loc)
    seg = "-".join(f.words(ctx.rng.randint(1, 4))).lower()
    lang = loc.split("_")[0]
    path = ctx.choice((f"/{lang}/products/{quote(seg)}", f"/{lang}-{loc[-2:].lower()}/blog/{ctx.date().year}/{quote(seg)}", f"/wiki/{quote(f.name().replace(' ', '_'))}",
                       f"/city/{quote(f.city())}", f"/@{quote(f.user_name())}", f"/tags/{quote(f.word())}", f"/{lang}/c/{quote(seg)}/p-{ctx.rng.randint(1, 99999)}.html"))
    params = [("ref", ctx.choice(("nav", "home_carousel", "related")))] if ctx.chance(0.3) else None
    return _req(ctx, "GET", path, params, locale=loc, ua=ctx.browser_ua())


@_template
def t_autocomplete(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.3)
    f = ctx.fk(loc)
    word = ctx.choice((f.word(), f.city(), f.last_name(), ctx.choice(("sel", "selec", "drop", "dropdown", "union", "unio", "updat", "delete", "script", "scripture", "exec", "executive", "cat", "catalog", "alert", "insert", "order by", "where to buy", "or", "and", "null", "true"))))
    prefix = word[: max(1, ctx.rng.randint(1, len(word)))]
    params = [(ctx.choice(("q", "term", "prefix", "query", "input")), prefix), ("limit", str(ctx.choice((5, 8, 10))))]
    if ctx.chance(0.4):
        params.append(("types", ctx.choice(("product,category", "(cities)", "address", "user"))))
    if ctx.chance(0.3):
        params.append(("session_token", ctx.uuid()))
    return _req(ctx, "GET", ctx.choice(("/api/suggest", "/autocomplete", "/complete/search", "/api/v1/typeahead", "/maps/api/place/autocomplete/json")), params,
                locale=loc, accept=_ACCEPT_JSON, extra=[("x-requested-with", "XMLHttpRequest")] if ctx.chance(0.4) else ())


@_template
def t_booking_calendar(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.3)
    f = ctx.fk(loc)
    start = ctx.dt(2024, 2026).replace(minute=ctx.choice((0, 15, 30, 45)), second=0)
    dur = ctx.choice((30, 45, 60, 90, 120))
    tzs = ctx.choice(("Z", "+02:00", "-05:00", "+05:30", ""))
    body = {
        "title": ctx.choice(("Team sync", "Dentist", "Table for " + str(ctx.rng.randint(2, 8)), "1:1 with " + f.first_name(), "Q3 review & planning", f.sentence(nb_words=3).rstrip("."))),
        "start": start.isoformat() + tzs, "end": (start + timedelta(minutes=dur)).isoformat() + tzs,
        "duration": f"PT{dur}M", "timezone": f.timezone(), "all_day": False,
        "attendees": [{"email": f.email(), "name": f.name(), "optional": ctx.chance(0.2)} for _ in range(ctx.rng.randint(0, 4))],
        "location": ctx.choice((f.address().replace("\n", ", "), "https://meet.example.com/" + ctx.alnum(10, string.ascii_lowercase), "Room 4.12 (2nd floor)", "")),
        "notes": ctx.choice(("", _free_text(ctx, loc, 1), "Bring laptop & charger", "Agenda: 1) updates 2) blockers 3) AOB")),
    }
    if ctx.chance(0.4):
        body["recurrence"] = [ctx.choice(("RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20251231T000000Z", "RRULE:FREQ=DAILY;COUNT=10", "RRULE:FREQ=MONTHLY;BYMONTHDAY=1"))]
    if ctx.chance(0.3):
        body = {"reservation": {"date": start.date().isoformat(), "time": start.strftime("%H:%M"), "party_size": ctx.rng.randint(1, 10),
                                "name": f.name(), "phone": _intl_phone(ctx), "special_requests": ctx.choice(("High chair please", "Gluten-free & nut allergy!", "Window seat if possible :)", "Birthday <3 – cake at 8pm?", ""))}}
    return _req(ctx, ctx.choice(("POST", "PUT")), ctx.choice(("/api/calendar/events", "/api/v1/bookings", "/reservations", "/calendar/v3/calendars/primary/events")), body=_jdump(ctx, body), ctype="application/json", locale=loc)


@_template
def t_account_settings(ctx: _Ctx) -> dict:
    f = ctx.fk(ctx.locale())
    r = ctx.rng.random()
    if r < 0.35:
        pw = f.password(length=ctx.rng.randint(10, 24))
        params = [("current_password", f.password(length=12)), ("new_password", pw), ("new_password_confirm", pw), ("csrf_token", ctx.b64url(32))]
        return _req(ctx, "POST", ctx.choice(("/account/password", "/settings/security/password")), body=_qs(ctx, params), ctype="application/x-www-form-urlencoded")
    if r < 0.55:
        params = [("code", "%06d" % ctx.rng.randint(0, 999999)), ("method", ctx.choice(("totp", "sms", "email"))), ("trust_device", ctx.choice(("0", "1")))]
        if ctx.chance(0.5):
            params.append(("secret", base64.b32encode(bytes(ctx.rng.getrandbits(8) for _ in range(20))).decode().rstrip("=")))
        return _req(ctx, "POST", "/account/2fa/verify", body=_qs(ctx, params), ctype="application/x-www-form-urlencoded")
    if r < 0.7:
        return _req(ctx, "GET", "/account/reset-password", [("token", ctx.b64url(32)), ("email", _plus_email(ctx))], ua=ctx.browser_ua(), referer="")
    body = {"notifications": {"email": {"orders": True, "marketing": ctx.chance(0.3), "digest": ctx.choice(("daily", "weekly", "never"))}, "push": {"enabled": ctx.chance(0.6), "quiet_hours": {"from": "22:00", "to": "07:00"}}},
            "privacy": {"profile_visibility": ctx.choice(("public", "friends", "private")), "search_indexing": ctx.chance(0.5)},
            "display": {"language": ctx.choice(("en", "de", "ja", "pt-BR", "ar")), "date_format": ctx.choice(("DD/MM/YYYY", "MM/DD/YYYY", "YYYY-MM-DD")), "number_format": ctx.choice(("1,234.56", "1.234,56", "1 234,56"))},
            "signature": ctx.choice(("", "-- \n" + f.name() + "\n" + f.job(), "Sent from my phone, excuse typos :)"))}
    return _req(ctx, ctx.choice(("PUT", "PATCH")), "/api/v1/me/settings", body=_jdump(ctx, body), ctype="application/json")


@_template
def t_rest_misc_methods(ctx: _Ctx) -> dict:
    r = ctx.rng.random()
    rid = ctx.choice((ctx.uuid(), str(ctx.rng.randint(1, 10**7)), ctx.alnum(12)))
    if r < 0.4:
        params = [("soft", "true")] if ctx.chance(0.4) else ([("reason", ctx.choice(("duplicate", "customer request", "spam")))] if ctx.chance(0.5) else None)
        return _req(ctx, "DELETE", ctx.choice((f"/api/v1/items/{rid}", f"/api/cart/lines/{rid}", f"/api/users/me/addresses/{rid}", f"/api/sessions/{rid}", f"/api/v2/files/{rid}")),
                    params, accept=_ACCEPT_JSON, extra=[("x-csrf-token", ctx.b64url(32))])
    if r < 0.7:
        origin = "https://" + ctx.choice(_HOSTS)
        extra = [("origin", origin), ("access-control-request-method", ctx.choice(("POST", "PUT", "DELETE", "PATCH"))),
                 ("access-control-request-headers", ctx.choice(("content-type,authorization", "content-type,x-requested-with,x-csrf-token", "x-api-key")))]
        return _req(ctx, "OPTIONS", ctx.choice(("/api/v1/orders", "/graphql", f"/api/items/{rid}", "/api/upload")), None, extra=extra, cookie="", accept=_ACCEPT_ANY)
    params = [("fields", "id,updated_at")] if ctx.chance(0.5) else None
    return _req(ctx, ctx.choice(("GET", "HEAD")), f"/api/v1/resources/{rid}", params, accept=_ACCEPT_JSON,
                extra=[("if-none-match", f'"{ctx.hexs(32)}"'), ("if-modified-since", ctx.dt().strftime("%a, %d %b %Y %H:%M:%S GMT"))])


@_template
def t_blog_comment(ctx: _Ctx) -> dict:
    loc = ctx.locale(0.4)
    f = ctx.fk(loc)
    text = ctx.choice((
        _free_text(ctx, loc, ctx.rng.randint(1, 4)),
        f"Great post! I'd add that **{f.word()}** matters too. See [this article](https://en.wikipedia.org/wiki/{quote(f.word())}) :)",
        f"> {f.sentence()}\n\nExactly this. {f.sentence()}",
        f"1. {f.sentence()}\n2. {f.sentence()}\n3. profit?",
        f"@{f.user_name()} thanks for sharing -- bookmarked! 👍",
        "Hmm, isn't 2 + 2 = 4 < 5? Or am I missing something...",
        "Select the text & press Ctrl+C / Cmd+C. Works on Windows & Mac.",
    ))
    params = [("comment", text), ("author", ctx.choice((f.name(), f.user_name()))), ("email", f.email()), ("url", ctx.choice(("", f.url()))),
              ("comment_post_ID", str(ctx.rng.randint(1, 9999))), ("comment_parent", ctx.choice(("0", str(ctx.rng.randint(1, 9999)))))]
    if ctx.chance(0.5):
        params.append(("wp-comment-cookies-consent", "yes"))
    return _req(ctx, "POST", ctx.choice(("/wp-comments-post.php", "/blog/comments", "/api/comments")), body=_qs(ctx, params), ctype="application/x-www-form-urlencoded", locale=loc, ua=ctx.browser_ua())


@_template
def t_experiment_cookies(ctx: _Ctx) -> dict:
    prefs = {"theme": ctx.choice(("dark", "light")), "currency": ctx.choice(("EUR", "USD", "JPY")), "recent": [ctx.rng.randint(1, 9999) for _ in range(ctx.rng.randint(1, 4))]}
    parts = [
        "ab_tests=" + quote(json.dumps({"checkout_v2": ctx.choice(("A", "B")), "hero": ctx.choice(("control", "variant_1")), "pricing": ctx.rng.randint(0, 3)}, separators=(",", ":"))),
        "optimizelyEndUserId=oeu" + str(ctx.rng.randint(10**12, 10**13)) + "r0." + str(ctx.rng.random())[2:],
        "prefs=" + base64.b64encode(json.dumps(prefs).encode()).decode(),
        f"ld_flags={ctx.b64url(18)}",
        f"locale={ctx.choice(('en-US', 'de-DE', 'fr-FR', 'ja-JP', 'zh-Hans-CN'))}",
        f"tz={quote(ctx.choice(('Europe/Berlin', 'America/New_York', 'Asia/Tokyo')))}",
        f"cf_clearance={ctx.b64url(30)}-{1_700_000_000 + ctx.rng.randint(0, 40_000_000)}-0-1-{ctx.hexs(8)}.{ctx.hexs(8)}.{ctx.hexs(8)}-0.2.{1_700_000_000 + ctx.rng.randint(0, 40_000_000)}",
        f"__stripe_mid={ctx.uuid()}{ctx.hexs(6)}",
        "viewed_banner=1", "consent=" + quote("necessary,analytics"),
        f"AWSALB={ctx.b64url(100)}",
        f"intercom-id-{ctx.alnum(8, string.ascii_lowercase + string.digits)}={ctx.uuid()}",
    ]
    parts = ctx.rng.sample(parts, ctx.rng.randint(3, len(parts))) + [_session_cookie(ctx)]
    return _req(ctx, "GET", ctx.choice(("/", "/pricing", "/checkout", "/api/v1/cart", "/de/", "/account/overview")), None, cookie="; ".join(parts), ua=ctx.browser_ua())


@_template
def t_payment_tokens(ctx: _Ctx) -> dict:
    f = ctx.fk(ctx.locale())
    r = ctx.rng.random()
    if r < 0.5:
        body = {"payment_method": "pm_" + ctx.alnum(24), "amount": ctx.rng.randint(100, 99999), "currency": ctx.choice(("eur", "usd", "gbp")), "customer": "cus_" + ctx.alnum(14),
                "description": ctx.choice(("Order #%d" % ctx.rng.randint(1000, 99999), "Subscription – Pro plan (annual)", "Top-up")), "metadata": {"order_id": ctx.uuid(), "channel": "web"},
                "return_url": _url_with_query(ctx), "card": {"brand": ctx.choice(("visa", "mastercard", "amex")), "last4": "%04d" % ctx.rng.randint(0, 9999), "exp_month": ctx.rng.randint(1, 12), "exp_year": ctx.rng.randint(2025, 2032)}}
        return _req(ctx, "POST", ctx.choice(("/api/payments", "/v1/payment_intents/confirm", "/api/checkout/pay")), body=_jdump(ctx, body), ctype="application/json")
    params = [("iban", f.iban() if hasattr(f, "iban") else "DE89370400440532013000"), ("bic", f.swift() if hasattr(f, "swift") else "COBADEFFXXX"), ("account_holder", f.name()),
              ("mandate_reference", "MNDT-" + ctx.alnum(10).upper()), ("amount", f"{ctx.rng.uniform(1, 999):.2f}"), ("reference", ctx.choice(("Invoice 2024/%d" % ctx.rng.randint(1, 999), "Miete 06/2024", "Membership fee")))]
    return _req(ctx, "POST", ctx.choice(("/billing/sepa", "/api/payouts", "/account/bank-details")), body=_qs(ctx, params), ctype="application/x-www-form-urlencoded")


# ---- TEMPLATES-END ----

# Relative weights; anything not listed weighs 1.0.  Developer posts with
# code snippets (SQL, shell, HTML) are genuinely ambiguous, so keep them at
# roughly 3% of the full mix.
WEIGHTS: dict[str, float] = {"forum_code_post": 1.5}

BENIGN_TEMPLATES: tuple[str, ...] = tuple(TEMPLATES)


def _schedule(names: list[str]) -> Iterator[str]:
    """Smooth weighted round-robin: deterministic, evenly interleaved."""
    weights = [WEIGHTS.get(n, 1.0) for n in names]
    total = sum(weights)
    cur = [0.0] * len(names)
    while True:
        for j, w in enumerate(weights):
            cur[j] += w
        best = max(range(len(names)), key=cur.__getitem__)
        cur[best] -= total
        yield names[best]


def benign_records(n: int, seed: int, templates: Iterable[str] | None = None) -> Iterator[dict]:
    """Yield ``n`` benign request records, deterministically from ``seed``."""
    names = list(BENIGN_TEMPLATES if templates is None else templates)
    unknown = [t for t in names if t not in TEMPLATES]
    if unknown:
        raise ValueError(f"unknown templates: {unknown}")
    if not names:
        raise ValueError("no templates selected")
    if n <= 0:
        return
    ctx = _Ctx(seed)
    counters = dict.fromkeys(names, 0)
    sched = _schedule(names)
    for _ in range(n):
        name = next(sched)
        i = counters[name]
        counters[name] = i + 1
        yield {
            "id": f"gen-{name}-{i}",
            "source": "generated",
            "set": f"gen:{name}",
            "family": "benign",
            "label": "benign",
            "request": TEMPLATES[name](ctx),
        }


if __name__ == "__main__":  # pragma: no cover - manual inspection helper
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    sd = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    for rec in benign_records(count, sd, sys.argv[3].split(",") if len(sys.argv) > 3 else None):
        print(json.dumps(rec, ensure_ascii=False))
