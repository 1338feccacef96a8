"""Load generators: an open-loop fixed rate (Python) and saturation (wrk, from Debian).

Fixed rate: each request is due at t0 + i/rate and its latency runs from that due time, not from
when it was actually sent, so a stall delays the requests behind it and they count it (no
coordinated omission). Requests never wait for each other: a request whose due time comes while
every connection is busy opens another one. The generator's own lateness is reported with the
results; it adds the same to every configuration measured.

Saturation: wrk over keep-alive connections, replaying the same prepared requests in a loop. wrk is
closed-loop, which is right for the maximum rate and wrong for latency; latency comes from the
fixed-rate runs.
"""
from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from extproc_lab.bench.report import percentiles

# A Lua script for wrk: load the prepared raw requests (length-prefixed) and send them in turn.
WRK_SCRIPT = """
local requests, index = {}, 0
local f = assert(io.open(os.getenv("BENCH_REQUESTS"), "rb"))
local data = f:read("*a")
f:close()
local at = 1
while at <= #data do
  local newline = string.find(data, "\\n", at, true)
  local size = tonumber(string.sub(data, at, newline - 1))
  requests[#requests + 1] = string.sub(data, newline + 1, newline + size)
  at = newline + size + 1
end
request = function()
  index = index % #requests + 1
  return requests[index]
end
"""
# A flood of distinct clients: every request a new address (X-Forwarded-For), session cookie and
# page, so the per-client state of the bot layer and the attack layer's memo fill up.
FLOOD_SCRIPT = """
local n = 0
request = function()
  n = n + 1
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", "/products/item-" .. n .. "?ref=flood" .. n, {
    ["host"] = "shop.example", ["x-forwarded-for"] = ip, ["cookie"] = "sid=flood" .. n,
    ["user-agent"] = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0",
    ["accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
end
"""
WRK_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


@dataclass
class FixedRateResult:
    rate: float
    sent: int
    latencies_us: list[float]
    lateness_us: list[float]  # how late the generator sent each request: its own overhead
    statuses: dict[int, int]
    connections: int

    def summary(self) -> dict:
        return {"rate": self.rate, "sent": self.sent, "statuses": self.statuses, "connections": self.connections,
                "latency": percentiles(self.latencies_us), "generator_lateness": percentiles(self.lateness_us)}


async def fixed_rate(port: int, payloads: list[bytes], rate: float, seconds: float, connections: int = 8) -> FixedRateResult:
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(connections):
        idle.append(await asyncio.open_connection("127.0.0.1", port))
    result = FixedRateResult(rate, 0, [], [], {}, connections)
    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if not idle:
            idle.append(await asyncio.open_connection("127.0.0.1", port))
            result.connections += 1
        tasks.append(asyncio.create_task(_one(idle, idle.pop(), payloads[i % len(payloads)], due, result)))
    await asyncio.gather(*tasks)
    for _reader, writer in idle:
        writer.close()
    result.sent = len(tasks)
    return result


async def _one(idle: list, connection, payload: bytes, due: float, result: FixedRateResult) -> None:
    reader, writer = connection
    result.lateness_us.append((time.perf_counter() - due) * 1e6)
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    await reader.readexactly(int(length.group(1)) if length else 0)
    result.latencies_us.append((time.perf_counter() - due) * 1e6)
    status = int(head[9:12])
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if re.search(rb"(?im)^connection:\s*close", head):
        writer.close()
    else:
        idle.append(connection)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def saturate(port: int, payloads: list[bytes], seconds: float, connections: int) -> dict:
    """wrk at full speed with one thread; requests/s, its latency percentiles, non-2xx count."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        requests = Path(tmp) / "requests.bin"
        requests.write_bytes(b"".join(str(len(p)).encode() + b"\n" + p for p in payloads))
        return _wrk(port, WRK_SCRIPT, seconds, connections, Path(tmp), {"BENCH_REQUESTS": str(requests)})


def flood(port: int, seconds: float, connections: int) -> dict:
    """wrk at full speed, every request from a new client."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        return _wrk(port, FLOOD_SCRIPT, seconds, connections, Path(tmp), {})


def _wrk(port: int, script: str, seconds: float, connections: int, tmp: Path, env: dict) -> dict:
    path = tmp / "script.lua"
    path.write_text(script)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "-s", str(path), f"http://127.0.0.1:{port}/"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60,
                            env={**env, "PATH": "/usr/bin:/bin"}).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> dict:
    rate = re.search(r"Requests/sec:\s*([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    latency = {f"p{q}_us": round(float(value) * WRK_UNITS[unit], 1)
               for q, value, unit in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)}
    return {"requests_per_s": float(rate.group(1)) if rate else 0.0, "requests": int(total.group(1)) if total else 0,
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": sum(map(int, errors.groups())) if errors else 0, "latency": latency}
