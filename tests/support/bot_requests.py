"""Requests as Envoy passes them for the bot tests: browsers, tools, crawlers, spoofers."""
from __future__ import annotations

from extproc.core.request import Request

CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/135.0.0.0 Safari/537.36")
# What Chrome 135 sends: its GREASE brand and brand order follow from the major version.
CHROME_CH = '"Google Chrome";v="135", "Not-A.Brand";v="8", "Chromium";v="135"'
SAFARI_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Version/18.3 Safari/605.1.15")
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GPTBOT_UA = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
GOOGLEBOT_IP, OPENAI_IP = "66.249.66.1", "20.171.207.2"


def chrome_navigation(path: str = "/", ip: str = "198.51.100.20", sec_ch_ua: str = CHROME_CH,
                      user_agent: str = CHROME_UA, platform: str = '"Windows"', t: float | None = None) -> Request:
    headers = (
        ("sec-ch-ua", sec_ch_ua), ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", platform),
        ("upgrade-insecure-requests", "1"), ("user-agent", user_agent),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
                   "application/signed-exchange;v=b3;q=0.7"),
        ("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate"), ("sec-fetch-user", "?1"),
        ("sec-fetch-dest", "document"), ("accept-encoding", "gzip, deflate, br, zstd"),
        ("accept-language", "en-US,en;q=0.9"), ("priority", "u=0, i"),
        ("x-forwarded-for", ip), ("x-forwarded-proto", "https"),
    )
    return Request("GET", path, authority="www.shop.example", scheme="https", headers=headers,
                   pseudo_order=(":method", ":authority", ":scheme", ":path"), source_ip=ip, received_at=t)


def safari_navigation(path: str = "/", ip: str = "198.51.100.21") -> Request:
    headers = (
        ("sec-fetch-dest", "document"), ("user-agent", SAFARI_UA),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate"), ("accept-language", "en-GB,en;q=0.9"),
        ("priority", "u=0, i"), ("accept-encoding", "gzip, deflate, br"),
        ("x-forwarded-for", ip), ("x-forwarded-proto", "https"),
    )
    return Request("GET", path, authority="www.shop.example", scheme="https", headers=headers,
                   pseudo_order=(":method", ":scheme", ":authority", ":path"), source_ip=ip)


def library(user_agent: str, path: str = "/api/v1/products", ip: str = "203.0.113.9",
            t: float | None = None) -> Request:
    """A library's defaults over HTTP/1.1 (Envoy's synthesised pseudo-header order)."""
    headers = (("user-agent", user_agent), ("accept-encoding", "gzip, deflate"), ("accept", "*/*"),
               ("x-forwarded-for", ip), ("x-forwarded-proto", "https"))
    return Request("GET", path, authority="www.shop.example", scheme="https", headers=headers,
                   pseudo_order=(":authority", ":path", ":method", ":scheme"), source_ip=ip, received_at=t)


def crawler(user_agent: str, ip: str, path: str = "/robots.txt") -> Request:
    headers = (("user-agent", user_agent), ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
               ("accept-encoding", "gzip, deflate, br"), ("from", "googlebot(at)googlebot.com"),
               ("x-forwarded-for", ip), ("x-forwarded-proto", "https"))
    return Request("GET", path, authority="www.shop.example", scheme="https", headers=headers,
                   pseudo_order=(":authority", ":path", ":method", ":scheme"), source_ip=ip)
