"""Recommendation serving latency: `GET /api/v1/customers/<id>/recommendations` under 50
concurrent clients (wrk, keep-alive), against a plain-Django view on the same server.

    .venv/bin/python bench/serving.py        # needs `wrk` (Debian package) on PATH

Starts PostgreSQL and Redis, imports Online Retail II, trains EASE, serves with gunicorn
(2 workers × 8 threads). Each of the 50 connections waits PACE_MS between its requests, so the
offered load (~50 × 1000 / PACE_MS req/s) stays below what two cores serve and the latency is the
service's, not a queue's (a closed loop at full speed only measures 50 / throughput).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402
from bench.crm import manage  # noqa: E402

PACE_MS = int(os.environ.get("BENCH_PACE_MS", 250))
SECONDS = int(os.environ.get("BENCH_SECONDS", 20))
CONNECTIONS = 50

LUA = """
local ids = {%(ids)s}
local path = "%(path)s"
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", string.gsub(path, "ID", id), {["Authorization"] = "Bearer %(key)s"})
end
function delay() return %(pace)d end
"""


def wrk(port: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    with services.postgres() as database_url, services.redis() as redis_url:
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "MARKETING_AI_DATA_DIR": tempfile.mkdtemp(prefix="bench-serving-"),
               "MARKETING_AI_URLCONF": "bench.urls", "API_RATE_LIMIT": "1000000/min",
               "DEBUG": "False", "DJANGO_SETTINGS_MODULE": "marketing_ai.settings"}  # fmt: skip
        os.environ.update(env)
        manage("migrate", "--noinput", env=env)
        manage("import_online_retail", "--workspace", "retail", env=env)
        import django

        django.setup()
        from crm.models import Customer, Workspace
        from crm.services import api_key_create
        from crm.services.recommendations import recommender_train

        workspace = Workspace.objects.get(slug="retail")
        recommender_train(workspace=workspace, model="ease", params={"l2": 500})
        _, key = api_key_create(workspace=workspace, name="bench", scopes=["crm:read"])
        ids = list(Customer.objects.filter(workspace=workspace).values_list("pk", flat=True))
        work = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
        scripts = {}
        for name, path in (
            ("recommendations", "/api/v1/customers/ID/recommendations?limit=10"),
            ("plain", "/bench/plain-customers?workspace=retail&limit=10&id=ID"),
        ):
            scripts[name] = work / f"{name}.lua"
            scripts[name].write_text(LUA % {"ids": ",".join(map(str, ids[:2000])), "path": path,
                                            "key": key, "pace": PACE_MS})  # fmt: skip
        port = services.free_port()
        web = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "marketing_ai.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "8",
             "--no-control-socket", "--log-level", "warning"],
            cwd=services.ROOT, env=env,
        )  # fmt: skip
        try:
            services.wait_for_port(port)
            time.sleep(1)
            wrk(port, scripts["recommendations"])  # warm-up: imports, connections, caches
            ours = wrk(port, scripts["recommendations"])
            plain = wrk(port, scripts["plain"])
        finally:
            web.terminate()
            web.wait()
    figures = {f"recommendations_{k}": round(v, 2) for k, v in ours.items()}
    figures.update({f"plain_view_{k}": round(v, 2) for k, v in plain.items()})
    figures["connections"] = CONNECTIONS
    figures["pace_ms"] = PACE_MS
    services.print_table(
        f"Serving: {CONNECTIONS} connections, each pausing {PACE_MS} ms between requests",
        [
            ("recommendations p50 / p99, ms", f"{ours['p50_ms']:.1f} / {ours['p99_ms']:.1f}",
             f"plain view {plain['p50_ms']:.1f} / {plain['p99_ms']:.1f}",
             f"target p99 < 20 ms ({ours['rps']:.0f} req/s, {ours['errors']:.0f} errors)"),
        ],
    )  # fmt: skip
    print(f"\nwrote {services.write_results('serving', figures)}")


if __name__ == "__main__":
    main()
