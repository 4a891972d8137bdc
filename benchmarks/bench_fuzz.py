"""Long fuzzing run: the properties of tests/fuzz (spec loader, agent socket protocol, metric lines, CLI
arguments) with far more examples than CI runs and a random seed, counting failures instead of stopping
at the first.

    python benchmarks/bench_fuzz.py                         # 100,000 inputs per entry point
    python benchmarks/bench_fuzz.py --examples 20000 --only spec,metrics --seed 1234

Each entry point's inputs are split over its properties as in CI (PROPERTIES in
tests/fuzz/test_fuzz_*.py); the protocol sends its requests three at a time. Runs in a temporary
SUANLI_HOME; the protocol run starts one agent there and checks at the end that it is the same live
process, that its log holds no traceback of an unknown bug, and that a job submitted through
`suanli submit` succeeds.

Prints one table (entry point, inputs, failures, of which known bugs, seconds), then every distinct
failure (where it was raised, or the property it broke) with its count, the known bug it matches (KNOWN
in the test modules) and its first input. Exits 1 if a failure matches no known bug. Hypothesis does not
shrink here: to shrink a failure, add its input to the module's REGRESSIONS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "fuzz")]

ENTRY_POINTS = {
    "spec": "test_fuzz_spec",
    "metrics": "test_fuzz_metrics",
    "protocol": "test_fuzz_protocol",
    "cli": "test_fuzz_cli",
}


def signature(e: BaseException) -> str:
    """Where a failure comes from: the exception type and the innermost frame in suanli (and the
    library frame below it, if any); for a broken property, the property's first words and the error
    it is about."""
    if isinstance(e, AssertionError):
        about = e.__cause__ or e.__context__
        head = str(e).split(":", 1)[0][:70]
        return f"{head} <- {signature(about)}" if about is not None else head
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/tests/fuzz/" not in f.filename]
    ours = [f for f in frames if "/suanli/" in f.filename]
    where = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in (ours[-1:] + frames[-1:])]
    return f"{type(e).__name__} at {' via '.join(dict.fromkeys(where)) or '?'}"


def known_bug(module, e: BaseException) -> str | None:  # type: ignore[no-untyped-def]
    """The name of the module's known bug that `e` is, if any."""
    from test_fuzz_spec import failure_text

    text = failure_text(e)
    for name, known in module.KNOWN.items():
        if known.pattern and re.search(known.pattern, text, re.DOTALL):
            return name
    return None


def run_property(module, strategy, check, context, n: int, seed: int):  # type: ignore[no-untyped-def]
    """(examples run, failures by signature, first input and error by signature, known bug by
    signature) for `n` examples of `check` on `strategy`, drawn from `seed`."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    count = [0]
    failures: Counter = Counter()
    first: dict[str, str] = {}
    known: dict[str, str | None] = {}

    def one(example) -> None:  # type: ignore[no-untyped-def]
        count[0] += 1
        try:
            check(context, example)
        except Exception as e:
            bug = known_bug(module, e)
            sig = signature(e) + (f"  [known: {bug}]" if bug else "  [NEW]")
            failures[sig] += 1
            if sig not in first:
                last = "".join(traceback.format_exception_only(e)).strip().splitlines()[-1]
                first[sig] = f"{example!r:.400}\n      {last[:400]}"
                known[sig] = bug

    test = settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )(given(strategy)(one))
    with_seed(seed)(test)()
    return count[0], failures, first, known


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    width = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, width, strict=True)))
    print("-+-".join("-" * w for w in width))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100_000, help="inputs per entry point")
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument(
        "--only", default=",".join(ENTRY_POINTS), help="comma-separated: " + ", ".join(ENTRY_POINTS)
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed}, {args.examples:,} inputs per entry point", flush=True)
    rows = []
    distinct: dict[str, list] = {}  # key -> [count, first input and error, known bug]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SUANLI_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("SUANLI_DB_URL", None)
        os.environ["SUANLI_POLICY"] = "fifo"
        for entry in [e.strip() for e in args.only.split(",") if e.strip()]:
            module = __import__(ENTRY_POINTS[entry])
            base = Path(tmp) / entry
            base.mkdir()
            done, failed, of_known = 0, 0, 0
            with module.bench_context(base) as context:
                t0 = time.perf_counter()
                per_example = getattr(module, "INPUTS_PER_EXAMPLE", 1)  # the protocol sends batches
                for name, (strategy, check, share) in module.PROPERTIES.items():
                    n = max(-(-int(args.examples * share) // per_example), 1)
                    count, failures, first, known = run_property(module, strategy, check, context, n, seed)
                    done += count * per_example
                    for sig, k in failures.items():
                        failed += k
                        of_known += k if known[sig] else 0
                        seen = distinct.setdefault(f"{entry} / {name}: {sig}", [0, first[sig], known[sig]])
                        seen[0] += k
                after = module.bench_after(context)
                seconds = time.perf_counter() - t0
            if after:
                failed += 1
                distinct[f"{entry}: after the run  [NEW]"] = [1, after, None]
            rows.append((entry, f"{done:,}", f"{failed:,}", f"{of_known:,}", f"{seconds:.1f}"))
            line = f"{done:,} inputs, {failed:,} failures ({of_known:,} of known bugs), {seconds:.1f} s"
            print(f"  {entry}: {line}", flush=True)

    table(rows, ("entry point", "inputs", "failures", "of known bugs", "seconds"))
    for key, (n, example, _known) in sorted(distinct.items()):
        print(f"\n{n:,} x {key}\n      {example}")
    print(json.dumps({"seed": seed, "inputs": args.examples, "cpus": os.cpu_count()}))
    return 1 if any(known is None for _, _, known in distinct.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
