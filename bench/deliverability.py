"""Bounce and complaint classification: ours (campaigns.deliverability.parse) against
flufl.bounce's own scan_message / all_failures, on the same messages in one run.

    flock /work/briefs/bench-lock .venv/bin/python bench/deliverability.py
    flock /work/briefs/bench-lock .venv/bin/python bench/deliverability.py --latency [--quick]
    flock /work/briefs/bench-lock .venv/bin/python bench/deliverability.py --throttling [--quick]

--latency measures instead how long a report takes to become a suppression in force, through
each way in, with a real worker and beat and a campaign sending meanwhile
(bench/deliverability_latency.py); its figures are merged into the same results file.
--throttling sends a broadcast to 10,000 recipients (--quick: 2,000) at three domains twice,
without and with one domain answering 421 for 20 s (bench/deliverability_throttling.py); its
throttle_* figures are merged in the same way.

Messages: the sample bounces in flufl.bounce 4.0's source distribution (flufl/bounce/tests/
data/, fetched with `pip download --no-binary :all: --no-deps flufl.bounce==4.0` into
BENCH_CACHE, default ~/.cache/marketing_ai/bench, never into the repository), with the expected
addresses of its detector tests (the DATA table of flufl/bounce/testing/helpers.py, read from
the sdist at run time: permanent -> hard, temporary -> soft; a file listed under two detectors
expects the union), plus our own reports in bench/data/deliverability/ for the soft / hard /
complaint cases those lack (expected.json).

Figures: address precision and recall over (message, address) pairs, and classification
accuracy (hard / soft / complaint) over the addresses found correctly, for ours, for
scan_message (permanent failures only: every address it names is called hard) and for
all_failures (temporary -> soft). Addresses are compared in lower case. Also what DKIM adds to
a send: milliseconds to sign one campaign message (campaigns.channels.mime's, 6 KB of HTML) with
a 2,048-bit key through dkimpy, best of 5 rounds of 50.

Held out, where BENCH_SISIMAI names a checkout of sisimai's set-of-emails (BSD-2-Clause, read in
place, never copied): its maildir/bsd bounces (lhost-*, rhost-*, rfc3464-*) and feedback reports
(arf-*), and maildir/not (not bounces). Its expected results live in sisimai's own test tables,
not in a form we read, so only coverage is measured there: the share of messages in which a
reader names at least one address (for flufl, anything all_failures returns, and apart from
that the messages where one of its finds is an address at all).
"""

import ast
import email
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.services import print_table, write_results  # noqa: E402
from campaigns.deliverability.parse import _plausible, parse  # noqa: E402

SDIST = "flufl.bounce-4.0.tar.gz"
OURS = ROOT / "bench" / "data" / "deliverability"
# In helpers.py's DATA but not a bounce test: flufl's test_unrecognized expects nothing here.
UNRECOGNISED = "dumbass_01.txt"


def sdist() -> Path:
    cache = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "marketing_ai" / "bench"))
    path = cache / SDIST
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
             "flufl.bounce==4.0", "-d", str(cache)],
            check=True,
        )  # fmt: skip
    return path


def flufl_samples() -> list[tuple[str, bytes, dict[str, str]]]:
    """(name, raw message, {address: kind}) for every file the detector tests name."""
    with tarfile.open(sdist()) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}
        helpers = tar.extractfile(members["flufl/bounce/testing/helpers.py"]).read().decode()
        data = _data_table(helpers)
        expected: dict[str, dict[str, str]] = {UNRECOGNISED: {}}
        for entry in data:
            _, filename, addresses, *temporary = entry
            kind = "soft" if temporary and temporary[0] else "hard"
            found = expected.setdefault(filename, {})
            for address in addresses:
                found[address.decode().lower()] = kind
        return [
            (name, tar.extractfile(members[f"flufl/bounce/tests/data/{name}"]).read(), want)
            for name, want in sorted(expected.items())
        ]


def _data_table(source: str) -> tuple:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DATA":
            return ast.literal_eval(node.value)
    raise RuntimeError("no DATA table in flufl.bounce's helpers.py")


def our_samples() -> list[tuple[str, bytes, dict[str, str]]]:
    expected = json.loads((OURS / "expected.json").read_text())
    return [(name, (OURS / name).read_bytes(), want) for name, want in sorted(expected.items())]


def ours(raw: bytes) -> dict[str, str]:
    return {r.address: r.kind for r in parse(raw)}


def flufl_scan(raw: bytes) -> dict[str, str]:
    from flufl.bounce import scan_message

    return {a.decode("ascii", "replace").lower(): "hard" for a in scan_message(_message(raw))}


def flufl_all(raw: bytes) -> dict[str, str]:
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(_message(raw))
    found = {a.decode("ascii", "replace").lower(): "soft" for a in temporary}
    found.update({a.decode("ascii", "replace").lower(): "hard" for a in permanent})
    return found


def _message(raw: bytes):
    return email.message_from_bytes(raw)


def score(samples, method) -> dict[str, float]:
    tp = fp = fn = right_kind = 0
    misses = []
    started = time.perf_counter()
    for name, raw, want in samples:
        try:
            got = method(raw)
        except Exception as exc:  # a crash on a sample is a miss of everything it holds
            got = {}
            misses.append(f"{name}: {type(exc).__name__}")
        for address, kind in got.items():
            if address in want:
                tp += 1
                right_kind += kind == want[address]
                if kind != want[address]:
                    misses.append(f"{name}: {address} {kind} (want {want[address]})")
            else:
                fp += 1
                misses.append(f"{name}: extra {address}")
        for address in want.keys() - got.keys():
            fn += 1
            misses.append(f"{name}: missed {address}")
    seconds = time.perf_counter() - started
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "accuracy": right_kind / tp if tp else 0.0,
        "exact": right_kind / (tp + fn) if tp + fn else 1.0,
        "ms_per_message": 1000 * seconds / len(samples),
        "misses": misses,
    }


def signing_ms() -> float:
    from campaigns.channels import mime
    from campaigns.deliverability import signing

    key = signing.key_generate()
    signer = signing.Signer(domain="shop.example", selector="s1", private_pem=key.private_pem)
    html = "<p>" + "Our winter collection is in, and the sale ends Sunday. " * 110 + "</p>"
    data = mime.build(
        sender="Shop <news@shop.example>", to="reader@mail.example.org", subject="Winter sale",
        text="Our winter collection is in.", html=html, message_id="<t@shop.example>",
        boundary="0f3c2a9b", headers={"List-Unsubscribe": "<https://shop.example/u/t>",
                                      "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )  # fmt: skip
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(50):
            signer.sign(data)
        best = min(best, (time.perf_counter() - started) / 50)
    return 1000 * best


def sisimai_coverage(root: Path) -> dict[str, float]:
    from flufl.bounce import all_failures

    groups: dict[str, list[Path]] = {"bounce": [], "arf": [], "not": []}
    for path in sorted((root / "maildir" / "bsd").glob("*.eml")):
        if path.name.startswith("arf-"):
            groups["arf"].append(path)
        elif path.name.startswith(("lhost-", "rhost-", "rfc3464-")):
            groups["bounce"].append(path)
    groups["not"] = sorted(p for p in (root / "maildir" / "not").iterdir() if p.is_file())
    figures: dict[str, float] = {}
    for group, paths in groups.items():
        ours_found = flufl_found = flufl_addresses = 0
        for path in paths:
            raw = path.read_bytes()
            ours_found += bool(parse(raw))
            try:
                temporary, permanent = all_failures(_message(raw))
            except Exception:  # noqa: BLE001  (a detector crashing on a message found nothing)
                temporary, permanent = set(), set()
            flufl_found += bool(temporary or permanent)
            flufl_addresses += any(_plausible(a) for a in temporary | permanent)
        figures[f"sisimai_{group}_messages"] = len(paths)
        figures[f"sisimai_{group}_ours_found"] = ours_found
        figures[f"sisimai_{group}_flufl_found"] = flufl_found
        figures[f"sisimai_{group}_flufl_found_addresses"] = flufl_addresses
    return figures


def latency_main(quick: bool) -> None:
    from bench import deliverability_latency

    figures = deliverability_latency.run(
        recipients=600 if quick else 3000, per_way=4 if quick else 20
    )
    rows = []
    for way, label in (("lmtp", "LMTP receiver"), ("imap", "mailbox (IMAP, 30 s poll)"),
                       ("webhook", "ESP webhook (queued to the worker)")):  # fmt: skip
        if f"feedback_{way}_p95_s" not in figures:
            continue
        done, sent = figures[f"feedback_{way}_suppressed"], figures[f"feedback_{way}_reports"]
        rows.append(
            (
                f"{label}: report to suppression, p50 / p95 / max, s ({done} of {sent})",
                f"{figures[f'feedback_{way}_p50_s']:.2f} / {figures[f'feedback_{way}_p95_s']:.2f}"
                f" / {figures[f'feedback_{way}_max_s']:.2f}",
                "–",
                "p95 ≤ 60",
            )
        )
    rows.append(("all ways: p95, s", f"{figures['feedback_all_p95_s']:.2f}", "–", "≤ 60"))
    rows.append(
        (
            "running campaign: sent to an address after its suppression was in force",
            str(figures["feedback_sent_after_suppression"]),
            f"skipped as suppressed {figures['feedback_skipped_as_suppressed']}, sent before "
            f"{figures['feedback_sent_before_suppression']}",
            "0",
        )
    )
    print_table("Feedback latency", rows)
    _merge(figures)


def _merge(figures: dict) -> None:
    path = ROOT / "bench" / "results" / "deliverability.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(figures)
    print(f"\n{write_results('deliverability', merged)}")


def throttling_main(quick: bool) -> None:
    from bench import deliverability_throttling as bench

    f = bench.run(recipients=2000 if quick else 10_000)
    b, t = "throttle_baseline_", "throttle_throttled_"
    rows = [
        (
            "messages per recipient, counted at the sink (exactly 1 / lost / duplicated)",
            f"{f[t + 'exactly_once']:,} / {f[t + 'lost']} / {f[t + 'duplicated']}"
            f" of {f[t + 'recipients']:,}",
            f"{f[b + 'exactly_once']:,} / {f[b + 'lost']} / {f[b + 'duplicated']}",
            f"all {f[t + 'recipients']:,} exactly 1",
        ),
        (
            "fast domains: launch to last message accepted, s",
            f"{f[t + 'done_s_fast']:.1f}",
            f"{f[b + 'done_s_fast']:.1f}",
            "–",
        ),
        (
            "fast domains: throttled / baseline",
            f"{f['throttle_fast_done_ratio']:.2f}",
            "–",
            "≤ 1.10",
        ),
        (
            f"{bench.SLOW}: launch to last message accepted, s",
            f"{f[t + 'done_s_slow']:.1f}",
            f"{f[b + 'done_s_slow']:.1f}",
            "–",
        ),
        (
            "deferrals: claimed and put back by the gate / after a 421 / postponed in the queue"
            " (messages deferred, most per message)",
            f"{f[t + 'deferrals_gate']:,} / {f[t + 'deferrals_refused']:,}"
            f" / {f[t + 'deferrals_postponed']:,}"
            f" ({f[t + 'deferred_messages']:,}, {f[t + 'deferrals_most_per_message']})",
            f"{f[b + 'deferrals_gate']:,} / {f[b + 'deferrals_refused']:,}",
            "–",
        ),
        ("failed messages", str(f[t + "failed"]), str(f[b + "failed"]), "0"),
    ]
    print_table(
        f"Throttling: {f['throttle_recipients']:,} recipients at 3 domains, {bench.SLOW} "
        f"answering 421 for {f['throttle_421_seconds']:g} s (throttled run / baseline)",
        rows,
    )
    _merge(f)


def main() -> None:
    if "--throttling" in sys.argv:
        throttling_main("--quick" in sys.argv)
        return
    if "--latency" in sys.argv:
        latency_main("--quick" in sys.argv)
        return
    sets = {"flufl": flufl_samples(), "ours": our_samples()}
    sets["all"] = sets["flufl"] + sets["ours"]
    methods = {"ours": ours, "flufl_scan": flufl_scan, "flufl_all": flufl_all}
    figures: dict[str, float] = {}
    results = {}
    for set_name, samples in sets.items():
        figures[f"{set_name}_messages"] = len(samples)
        figures[f"{set_name}_addresses"] = sum(len(w) for _, _, w in samples)
        for method_name, method in methods.items():
            result = score(samples, method)
            results[set_name, method_name] = result
            for key in ("precision", "recall", "accuracy", "exact", "ms_per_message"):
                figures[f"{set_name}_{method_name}_{key}"] = round(result[key], 4)
    rows = []
    for set_name, label in (
        ("flufl", f"flufl.bounce 4.0 samples ({figures['flufl_messages']} messages)"),
        ("ours", f"our DSN/ARF samples ({figures['ours_messages']} messages)"),
        ("all", "all"),
    ):
        o = results[set_name, "ours"]
        s = results[set_name, "flufl_scan"]
        a = results[set_name, "flufl_all"]
        for key, target in (("precision", "≥ flufl"), ("recall", "≥ flufl"),
                            ("accuracy", "≥ 98%")):  # fmt: skip
            rows.append(
                (
                    f"{label}: address {key}" if key != "accuracy" else f"{label}: kind accuracy",
                    f"{o[key]:.1%}",
                    f"scan_message {s[key]:.1%} / all_failures {a[key]:.1%}",
                    target,
                )
            )
    figures["dkim_sign_ms_per_message"] = round(signing_ms(), 2)
    rows.append(
        (
            "DKIM signature per message (dkimpy, RSA 2048), ms",
            f"{figures['dkim_sign_ms_per_message']:.1f}",
            "–",
            "–",
        )
    )
    if os.environ.get("BENCH_SISIMAI"):
        held_out = sisimai_coverage(Path(os.environ["BENCH_SISIMAI"]))
        figures.update(held_out)
        for group, label in (
            ("bounce", "bounces"),
            ("arf", "feedback reports"),
            ("not", "not bounces (lower is right)"),
        ):
            n = held_out[f"sisimai_{group}_messages"]
            rows.append(
                (
                    f"held out, sisimai set-of-emails, {label} ({n}): messages naming an address",
                    f"{held_out[f'sisimai_{group}_ours_found']}",
                    f"all_failures {held_out[f'sisimai_{group}_flufl_found']} (of them "
                    f"addresses: {held_out[f'sisimai_{group}_flufl_found_addresses']})",
                    "–",
                )
            )
    print_table("Bounce and complaint classification", rows)
    for method_name in methods:
        misses = results["all", method_name]["misses"]
        print(f"\n{method_name}: {len(misses)} misses")
        for line in misses:
            print(f"  {line}")
    print(f"\n{write_results('deliverability', figures)}")


if __name__ == "__main__":
    main()
