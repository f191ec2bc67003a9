"""`make mutants`: apply known faults one at a time to a copy of the tree and check a test catches each.

Each mutant is one entry of MUTANTS: the file, the exact original snippet (it must occur
exactly once), its replacement, and the tests that must fail with it. For each mutant the
tree is copied to a temporary folder (without .venv, .git, data), the snippet replaced, and
the tests run there on SQLite with this interpreter. First the same tests run on an
unmutated copy: a mutant only counts as killed if the tests pass without it.

    python tests/mutants.py            # every mutant, then the table; exit 1 if one survived
    python tests/mutants.py 3 5        # only mutants 3 and 5
    python tests/mutants.py --list     # the table of mutants, nothing run

Exit status: 0 every mutant killed; 1 a mutant survived or the baseline failed;
2 a mutant could not be applied (its snippet is gone: re-point it at the new code).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".venv", ".git", "data", ".run", "test-artifacts", "__pycache__", ".pytest_cache",
                                "*.egg-info", "build", "node_modules")


@dataclass(frozen=True)
class Mutant:
    number: int
    fault: str
    path: str
    original: str
    replacement: str
    tests: tuple[str, ...]


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        1, "the relay skips the dashboard for PaymentCaptured, yet marks the row sent and confirmed",
        "eventbus/relay.py",
        "from eventbus import broker, registry, subscriptions, transport\n",
        "from eventbus import broker, registry, transport\n"
        "from eventbus import subscriptions as _subscriptions\n\n\n"
        "class subscriptions:  # MUTANT 1\n"
        "    @staticmethod\n"
        "    def subscribers_of(event_type):\n"
        "        return [s for s in _subscriptions.subscribers_of(event_type)\n"
        "                if not (event_type == 'PaymentCaptured' and s == 'dashboard')]\n",
        ("tests/faults/test_flow_faults.py::test_every_message_of_a_flow_delivered_twice",),
    ),
    Mutant(
        2, "delivery records the inbox row in a transaction of its own, apart from the handlers",
        "eventbus/delivery.py",
        "    with transaction.atomic(using=context):\n"
        "        try:\n"
        "            with transaction.atomic(using=context):\n"
        "                row = InboxMessage.objects.using(context).create(event_id=message_id, event_type=message_type)\n"
        "        except IntegrityError:\n"
        "            row = None\n"
        "        yield row\n",
        "    try:  # MUTANT 2\n"
        "        with transaction.atomic(using=context):\n"
        "            row = InboxMessage.objects.using(context).create(event_id=message_id, event_type=message_type)\n"
        "    except IntegrityError:\n"
        "        row = None\n"
        "    with transaction.atomic(using=context):\n"
        "        yield row\n",
        ("tests/integration/test_bus.py::test_sigkill_while_the_handler_runs_loses_nothing_and_applies_once",
         "tests/integration/test_bus.py::test_a_failing_handler_is_retried_then_dead_lettered_and_retryable"),
    ),
    Mutant(
        3, "the inbox insert is skipped for one event in 50",
        "eventbus/delivery.py",
        "            with transaction.atomic(using=context):\n"
        "                row = InboxMessage.objects.using(context).create(event_id=message_id, event_type=message_type)\n",
        "            with transaction.atomic(using=context):\n"
        "                inbox_transaction.__dict__['seen'] = inbox_transaction.__dict__.get('seen', 0) + 1  # MUTANT 3\n"
        "                row = InboxMessage(event_id=message_id, event_type=message_type)\n"
        "                if inbox_transaction.seen % 50:\n"
        "                    row.save(using=context, force_insert=True)\n",
        ("tests/faults/test_broker_faults.py::test_a_steady_load_without_faults_is_audited_clean",),
    ),
    Mutant(
        4, "orders applies InventoryChanged without its version check (events seen in reversed order win)",
        "orders/services.py",
        "        if view is not None and view.version >= version:\n",
        "        if view is not None and False:  # MUTANT 4\n",
        ("tests/faults/test_flow_faults.py::test_inventory_changes_delivered_newest_first_leave_orders_view_at_the_newest",
         "tests/faults/test_flow_faults.py::test_a_flow_delivered_in_reversed_order_ends_in_the_same_state"),
    ),
    Mutant(
        5, "the dashboard broadcast drops one entry in 100",
        "dashboard/services.py",
        "    items = [entry.as_message() for entry in entries]\n",
        "    items = [entry.as_message() for entry in entries if entry.seq % 100 != 37]  # MUTANT 5\n",
        ("tests/integration/test_websocket_live.py::test_snapshot_then_every_entry_in_seq_order_in_paced_batches",),
    ),
    Mutant(
        6, "emails are not masked in OrderRequested messages",
        "eventbus/privacy.py",
        "    if isinstance(value, dict):\n"
        "        return {key: _masked_item(key, item) for key, item in value.items()}\n",
        "    if isinstance(value, dict):\n"
        "        if value.get('event_type') == 'OrderRequested':  # MUTANT 6\n"
        "            return value\n"
        "        return {key: _masked_item(key, item) for key, item in value.items()}\n",
        ("tests/integration/test_websocket_consumer.py::test_snapshot_then_entries_with_emails_masked_unless_staff",
         "tests/integration/test_websocket_live.py::test_staff_see_emails_and_anonymous_viewers_do_not"),
    ),
    Mutant(
        7, "a command's deadline check after it ran is removed",
        "eventbus/commands.py",
        "            reply.setdefault(\"outcome\", \"ok\" if reply.get(\"ok\") else \"refused\")\n"
        "            if datetime.now(timezone.utc) > expires_at:\n"
        "                raise CommandExpired()\n",
        "            reply.setdefault(\"outcome\", \"ok\" if reply.get(\"ok\") else \"refused\")  # MUTANT 7: no deadline check\n",
        ("tests/integration/test_commands.py::test_a_command_still_running_when_its_sender_gives_up_is_undone",),
    ),
)


def copy_tree() -> Path:
    target = Path(tempfile.mkdtemp(prefix="eventflow-mutant-")) / "tree"
    shutil.copytree(ROOT, target, ignore=IGNORE)
    return target


def apply(mutant: Mutant, tree: Path) -> None:
    path = tree / mutant.path
    text = path.read_text()
    if text.count(mutant.original) != 1:
        raise SystemExit(f"mutant {mutant.number} could not be applied")
    path.write_text(text.replace(mutant.original, mutant.replacement))


def applicable(mutant: Mutant) -> str:
    """'' if the snippet occurs exactly once in the working tree, else why not."""
    path = ROOT / mutant.path
    if not path.exists():
        return f"{mutant.path} does not exist"
    found = path.read_text().count(mutant.original)
    return "" if found == 1 else f"its snippet occurs {found} times in {mutant.path}"


def run_tests(tree: Path, tests: tuple[str, ...], log: Path) -> bool:
    """True if the tests pass in `tree`; their output goes to `log`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REQUIRE_BROWSER")}
    env["PYTHONPATH"] = str(tree)  # ahead of the editable install, which points at the real tree
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    check = subprocess.run([sys.executable, "-c", "import eventbus; print(eventbus.__file__)"],
                           cwd=tree, env=env, capture_output=True, text=True)
    if not check.stdout.startswith(str(tree)):
        raise SystemExit(f"the copy is not what Python imports: {check.stdout.strip() or check.stderr[-500:]}")
    with open(log, "w") as out:
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)
    return result.returncode == 0


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:100] if lines else ""


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("numbers", nargs="*", type=int, help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.numbers or m.number in args.numbers]
    if args.list:
        print_table([("#", "file", "fault", "tests")] +
                    [(str(m.number), m.path, m.fault, " ".join(t.split("::")[-1] for t in m.tests)) for m in chosen])
        return 0
    broken = [(m, why) for m in chosen if (why := applicable(m))]
    for mutant, why in broken:
        print(f"mutant {mutant.number} could not be applied: {why}", file=sys.stderr)
    if broken:
        return 2

    logs = ROOT / "test-artifacts" / "mutants"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
    print(f"baseline: {len(tests)} tests on an unmutated copy ...", flush=True)
    tree = copy_tree()
    try:
        if not run_tests(tree, tests, logs / "baseline.log"):
            print(f"the tests fail without any mutant: {last_line(logs / 'baseline.log')} "
                  f"(see {logs / 'baseline.log'})", file=sys.stderr)
            return 1
    finally:
        shutil.rmtree(tree.parent, ignore_errors=True)

    rows = [("#", "fault", "result", "seconds", "what the tests said")]
    survived = 0
    for mutant in chosen:
        print(f"mutant {mutant.number}: {mutant.fault} ...", flush=True)
        tree = copy_tree()
        started = time.monotonic()
        try:
            apply(mutant, tree)
            log = logs / f"mutant-{mutant.number}.log"
            passed = run_tests(tree, mutant.tests, log)
        finally:
            shutil.rmtree(tree.parent, ignore_errors=True)
        survived += passed
        rows.append((str(mutant.number), mutant.fault, "SURVIVED" if passed else "killed",
                     f"{time.monotonic() - started:.0f}", last_line(log)))
    print()
    print_table(rows)
    print(f"\n{len(chosen) - survived} of {len(chosen)} mutants killed; logs in {logs}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
