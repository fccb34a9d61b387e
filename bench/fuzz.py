"""A long fuzz run that tallies every problem instead of stopping at the first one.

The suite's tests/test_fuzz.py stops (and shrinks) at the first failing example; this runs the
same strategies, the same bot and the same checks for as many examples as you like and prints
how often each kind of problem occurred, with one example each:

    python -m bench.fuzz --examples 3000 --seed 1

Exit code 1 if anything was found.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.test_fuzz import BackgroundBot, Step, Who, people, play, stories


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    found: Counter[str] = Counter()
    first: dict[str, str] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch, BackgroundBot(Path(scratch)) as runner:

        @seed(args.seed)
        @settings(
            max_examples=args.examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],  # nothing raises, so nothing to shrink
            suppress_health_check=list(HealthCheck),
        )
        @given(who=people, story=stories)
        def explore(who: Who, story: list[Step]) -> None:
            person = runner.new_person(who)
            for step in story:
                for problem in runner.run(play(runner, person, step)):
                    found[problem.kind] += 1
                    first.setdefault(problem.kind, f"{step} → {problem.detail}")
            runner.run(runner.retire(person))

        explore()
        updates = runner.updates
    elapsed = time.monotonic() - started
    print(f"{args.examples} examples, {updates} updates, seed {args.seed}, {elapsed:.0f} s")
    print(f"{sum(found.values())} problems")
    for kind, count in found.most_common():
        print(f"{count:6d}  {kind}\n        e.g. {first[kind][:300]}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
