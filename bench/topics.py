"""Topic benchmark: how well and how fast exporter/topics.py finds the subjects of a theme.

Quality, per theme of the labelled set tests/data/topics_labelled.json (the definitions are
those of tests/exporter/test_export_topics.py): topics found against true topics, purity (of the
contributions placed in a topic, the share whose truth label is their topic's majority label),
coverage (of the on-topic contributions, the share placed in a topic whose majority label is
their own), unassigned contributions, and the time.

Scale: N contributions of one theme (the labelled set's generator, more contributions per
topic: paraphrases, typos, off-topic ones), each size in a fresh child process pinned to one
core; the child reports its wall and CPU time and its peak resident memory (ru_maxrss), with
the memory after imports (numpy, scikit-learn, YAKE) apart. Target: a few thousand
contributions of a theme in a few seconds on one core.

    .venv/bin/python bench/topics.py [--sizes 1000,5000] [--threshold 0.95]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.topics import Contribution, TopicSettings, find_topics  # noqa: E402
from tests.data.make_topics_labelled import (  # noqa: E402
    OFF_TOPIC,
    THEME_1,
    build,
    purity_and_coverage,
)

LABELLED = ROOT / "tests" / "data" / "topics_labelled.json"


def _contributions(items: list[dict[str, str]]) -> list[Contribution]:
    return [Contribution(i["id"], i["participant"], i["need"], i["solution"]) for i in items]


def quality(settings: TopicSettings) -> None:
    items: list[dict[str, str]] = json.loads(LABELLED.read_text(encoding="utf-8"))
    print(
        f"{'theme':<32} {'items':>5} {'topics':>6} {'true':>4} {'purity':>6} {'cover':>6} "
        f"{'unassigned':>10} {'ms':>6}  labels"
    )
    for theme in sorted({i["theme"] for i in items}):
        mine = [i for i in items if i["theme"] == theme]
        truth = {i["id"]: i["topic"] for i in mine}
        start = time.perf_counter()
        result = find_topics(_contributions(mine), settings)
        ms = (time.perf_counter() - start) * 1000
        purity, coverage = purity_and_coverage((t.contributions for t in result.topics), truth)
        true_topics = len(set(truth.values()) - {OFF_TOPIC})
        labels = " | ".join(f"{t.label} ({t.participants})" for t in result.topics)
        print(
            f"{theme:<32} {len(mine):>5} {len(result.topics):>6} {true_topics:>4} "
            f"{purity:>6.2f} {coverage:>6.2f} {len(result.unassigned):>10} {ms:>6.0f}  {labels}",
            flush=True,
        )


def child(n: int, threshold: float) -> None:
    """Find the topics of ``n`` contributions of one theme in this process (pinned to one
    core) and print its figures as JSON."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    per_topic = max(1, n // 4)
    items = [i for i in build(per_topic=per_topic) if i["theme"] == THEME_1][:n]
    truth = {i["id"]: i["topic"] for i in items}
    contributions = _contributions(items)
    imported_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    result = find_topics(contributions, TopicSettings(distance_threshold=threshold))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    purity, coverage = purity_and_coverage((t.contributions for t in result.topics), truth)
    print(
        json.dumps(
            {
                "n": len(items),
                "seconds": wall,
                "cpu": cpu,
                "imported_mib": imported_kib / 1024,
                "peak_mib": peak_kib / 1024,
                "topics": len(result.topics),
                "purity": purity,
                "coverage": coverage,
                "unassigned": len(result.unassigned),
            }
        )
    )


def measure(n: int, threshold: float) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(n), "--threshold", str(threshold)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--threshold", type=float, default=TopicSettings().distance_threshold)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threshold)
        return
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"# labelled set, distance threshold {args.threshold}")
    quality(TopicSettings(distance_threshold=args.threshold))
    print(f"# scale: contributions of one theme ({THEME_1}), one core, a child process each")
    print(
        f"{'contributions':>13} {'seconds':>8} {'cpu s':>6} {'MiB imports':>11} "
        f"{'peak MiB':>9} {'topics':>6} {'purity':>6} {'cover':>6} {'unassigned':>10}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        fig = measure(n, args.threshold)
        print(
            f"{int(fig['n']):>13} {fig['seconds']:>8.2f} {fig['cpu']:>6.2f} "
            f"{fig['imported_mib']:>11.0f} {fig['peak_mib']:>9.0f} {int(fig['topics']):>6} "
            f"{fig['purity']:>6.2f} {fig['coverage']:>6.2f} {int(fig['unassigned']):>10}",
            flush=True,
        )


if __name__ == "__main__":
    main()
