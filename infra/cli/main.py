"""`ledgerflow`: the operator CLI.

Every command reads the same `Settings` as the services (`LEDGERFLOW_*` environment variables), so it
works against the local servers and against real Kafka and DynamoDB alike. Failures an operator can act
on (bad flags, unreachable servers, refused operations) are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, NoReturn, TypeVar

import typer
from aiokafka.errors import KafkaError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from consumers.registry import CONSUMER_GROUPS
from infra.audit import audit
from infra.cli import broker, rebuild
from infra.cli.dead_letters import DeadLetter, DeadLetterId, RedriveLog, dlq_topic_for, from_record
from infra.cli.errors import CliError
from infra.cli.local import local_app
from infra.cli.reconcile import add_item, reconcile, scan_pages
from infra.cli.release import ReleaseResult, quarantined_groups, release_account
from infra.cli.replay import PartitionPlan, Target, execute, plan
from infra.dynamo.accounts import DynamoAccounts
from infra.dynamo.client import dynamodb_client
from infra.settings import Settings

USAGE_EXIT: Final = 2
T = TypeVar("T")
# Off a terminal (pipes, CI logs) rich would wrap at 80 columns; ids and reasons read better unwrapped.
out = Console(highlight=False, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)


class _OneLineErrors(TyperGroup):
    """Turns every failure into one line on stderr: usage errors exit 2, everything else 1."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except CliError as exc:
            _fail(str(exc), exc.exit_code)
        except Exception as exc:
            # Typer's (vendored) click exceptions: usage errors carry exit code 2 and their own message.
            code, message = getattr(exc, "exit_code", None), getattr(exc, "format_message", None)
            if isinstance(code, int) and callable(message):
                hint = " (see --help)" if code == USAGE_EXIT else ""
                _fail(f"{message()}{hint}", code)
            if type(exc).__name__ == "Abort":
                _fail("aborted", 130)
            _fail(f"unexpected {type(exc).__name__}: {exc}", 1)
        sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    typer.echo(f"ledgerflow: error: {first}", err=True)
    sys.exit(code)


app = typer.Typer(
    cls=_OneLineErrors,
    name="ledgerflow",
    help="Operate ledgerflow: replay, rebuild, dead letters, lag, reconcile, topics, users.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(cls=_OneLineErrors, help="Dead letters: list, show, redrive.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
users_app = typer.Typer(
    cls=_OneLineErrors, help="Users: grant or withdraw the admin role.", no_args_is_help=True
)
app.add_typer(users_app, name="users")
app.add_typer(local_app, name="local")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        raise CliError(f"invalid setting {where}: {error['msg']}", USAGE_EXIT) from exc


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a command's coroutine; known failures become one line and exit 1."""
    # aiokafka and asyncio log connection trouble with tracebacks; the CLI reports it in its own words.
    logging.disable(logging.CRITICAL)
    try:
        return asyncio.run(coro)
    except CliError as exc:
        _fail(str(exc), exc.exit_code)
    except KafkaError as exc:
        _fail(f"Kafka: {exc}", 1)
    except (BotoCoreError, ClientError) as exc:
        _fail(f"DynamoDB: {exc}", 1)
    except OSError as exc:
        _fail(f"{type(exc).__name__}: {exc}", 1)
    except Exception as exc:
        _fail(f"unexpected {type(exc).__name__}: {exc}", 1)


# --- replay ------------------------------------------------------------------------------------------


def _parse_datetime(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 date-time: {text!r}") from exc
    # A time without a zone is read as UTC, as every time in the system is.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("replay")
def replay_command(
    group: Annotated[str, typer.Argument(help="The consumer group, e.g. ledger.")],
    topic: Annotated[list[str], typer.Option("--topic", "-t", help="A topic the group reads (repeatable).")],
    to_datetime: Annotated[
        datetime | None,
        typer.Option(
            "--to-datetime", parser=_parse_datetime, metavar="ISO", help="First message at/after this time."
        ),
    ] = None,
    to_offset: Annotated[int | None, typer.Option("--to-offset", min=0, help="This offset.")] = None,
    to_earliest: Annotated[bool, typer.Option("--to-earliest", help="The beginning.")] = False,
    execute_: Annotated[bool, typer.Option("--execute", help="Apply it (default: dry run).")] = False,
) -> None:
    """Move a group's committed offsets back (or forward), like kafka-consumer-groups --reset-offsets."""
    chosen = [to_datetime is not None, to_offset is not None, to_earliest]
    if sum(chosen) != 1:
        raise CliError("give exactly one of --to-datetime, --to-offset, --to-earliest", USAGE_EXIT)
    target = Target(to_datetime=to_datetime, to_offset=to_offset, to_earliest=to_earliest)
    settings = _settings()

    async def run() -> list[PartitionPlan]:
        plans = await plan(settings, group, list(dict.fromkeys(topic)), target)
        if execute_:
            await execute(settings, group, plans)
        return plans

    plans = _run(run())
    table = Table(title=f"replay {group} to {target.describe()}" + ("" if execute_ else " (dry run)"))
    for column in ("topic", "partition", "committed", "target", "end", "reprocessed"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for p in plans:
        committed = "-" if p.committed is None else str(p.committed)
        table.add_row(
            p.tp.topic, str(p.tp.partition), committed, str(p.target), str(p.end), str(p.reprocessed)
        )
    out.print(table)
    total = sum(p.reprocessed for p in plans)
    if execute_:
        out.print(f"Done: group {group} will reprocess {total} message(s) when its consumers start.")
    else:
        out.print(
            f"Dry run: {total} message(s) would be reprocessed. "
            "Stop the group's consumers, then add --execute."
        )


# --- rebuild -----------------------------------------------------------------------------------------


class ReadModel(StrEnum):
    # A command's status needs no rebuild: it is the settlement's own outcome record.
    portfolio = "portfolio"


@app.command("rebuild")
def rebuild_command(
    model: Annotated[ReadModel, typer.Argument(help="The read model to rebuild.")],
) -> None:
    """Rebuild a read model from its topics, from the beginning, while the API keeps serving."""
    settings = _settings()
    topics = rebuild.PORTFOLIO_TOPICS

    async def run() -> rebuild.RebuildResult:
        ends = await rebuild.snapshot_ends(settings, topics)
        total = sum(ends.values())
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=out, transient=False) as bar:
            task = bar.add_task(f"rebuild {model.value}", total=total)
            async with dynamodb_client(settings) as client:
                return await rebuild.rebuild_portfolio(settings, client, ends, lambda n: bar.advance(task, n))

    result = _run(run())
    out.print(
        f"Rebuilt {model.value}: read {result.read} message(s), applied {result.applied} fills "
        f"across {result.accounts} account(s), "
        f"skipped {result.skipped} unreadable."
    )


# --- dead letters ------------------------------------------------------------------------------------


async def _dlq_topics(settings: Settings, topic: str | None) -> list[str]:
    async with broker.admin_client(settings) as admin:
        existing = await broker.list_topics(admin)
    if topic is None:
        return [t for t in existing if t.endswith(".dlq")]
    wanted = dlq_topic_for(topic)
    if wanted not in existing:
        raise CliError(f"no such dead-letter topic: {wanted}")
    return [wanted]


async def _letters(settings: Settings, topics: Sequence[str]) -> list[DeadLetter]:
    async with broker.reader(settings) as consumer:
        ends = await broker.topic_ends(consumer, topics, settings)
        return [from_record(r) async for r in broker.read_all(consumer, ends, settings)]


async def _redriven(settings: Settings, topics: Sequence[str]) -> dict[DeadLetterId, str]:
    async with dynamodb_client(settings) as client:
        log = RedriveLog(client, settings.dynamodb_table)
        found: dict[DeadLetterId, str] = {}
        for t in topics:
            found.update(await log.redriven(t))
        return found


@dlq_app.command("list")
def dlq_list(
    topic: Annotated[str | None, typer.Option("--topic", "-t", help="Original or .dlq topic.")] = None,
) -> None:
    """List dead letters: why, where from, and whether they were redriven."""
    settings = _settings()

    async def run() -> tuple[list[DeadLetter], dict[DeadLetterId, str]]:
        topics = await _dlq_topics(settings, topic)
        return await _letters(settings, topics), await _redriven(settings, topics)

    letters, redriven = _run(run())
    table = Table(title=f"dead letters ({len(letters)})")
    table.add_column("id", no_wrap=True)
    for column in ("error", "reason", "original", "dead-lettered at", "redrives", "redriven"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.error,
            letter.reason[:80],
            f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}",
            letter.dead_lettered_at,
            str(_redrives(letter, redriven)),
            redriven.get(letter.id, ""),
        )
    out.print(table)


@dlq_app.command("show")
def dlq_show(
    letter_id: Annotated[str, typer.Argument(metavar="ID", help="<topic>.dlq:<partition>:<offset>")],
) -> None:
    """Show one dead letter: headers, key and value."""
    settings = _settings()
    wanted = _parse_id(letter_id)

    async def run() -> tuple[DeadLetter, str | None]:
        letter = await _one_letter(settings, wanted)
        return letter, (await _redriven(settings, [wanted.topic])).get(wanted)

    letter, redriven_at = _run(run())
    table = Table(title=str(letter.id), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("error", letter.error)
    table.add_row("reason", letter.reason)
    table.add_row("original topic", letter.original_topic)
    table.add_row("original partition", letter.original_partition)
    table.add_row("original offset", letter.original_offset)
    table.add_row("dead-lettered at", letter.dead_lettered_at)
    table.add_row("consumer group", letter.header("x-consumer-group") or "")
    table.add_row("redriven at", redriven_at or "no")
    table.add_row("redrives", str(letter.redrive_count + (1 if redriven_at else 0)))
    table.add_row("quarantine", letter.quarantine or "-")
    table.add_row("key", (letter.key or b"").decode(errors="replace"))
    for name, value in letter.headers:
        table.add_row(f"header {name}", value.decode(errors="replace")[:500])
    text = (letter.value or b"").decode(errors="replace")
    table.add_row("value", text if len(text) <= 4000 else f"{text[:4000]}... ({len(text)} bytes)")
    out.print(table)


def _redrives(letter: DeadLetter, redriven: Mapping[DeadLetterId, str]) -> int:
    """How many times the message has been sent back: before it landed here, and from here."""
    return letter.redrive_count + (1 if letter.id in redriven else 0)


def _parse_id(text: str) -> DeadLetterId:
    try:
        return DeadLetterId.parse(text)
    except CliError as exc:
        raise CliError(str(exc), USAGE_EXIT) from exc


async def _one_letter(settings: Settings, wanted: DeadLetterId) -> DeadLetter:
    async with broker.reader(settings) as consumer:
        tps = [
            tp for tp in await broker.partitions(consumer, wanted.topic) if tp.partition == wanted.partition
        ]
        if not tps:
            raise CliError(f"no such dead letter: {wanted} (no such topic or partition)")
        ends = await broker.highwaters(consumer, tps, settings)
        if wanted.offset >= ends[tps[0]]:
            raise CliError(f"no such dead letter: {wanted} (the partition ends at {ends[tps[0]]})")
        record = await broker.record_at(consumer, tps[0], wanted.offset, ends[tps[0]])
    if record is None or record.offset != wanted.offset:
        raise CliError(f"no such dead letter: {wanted}")
    return from_record(record)


@dlq_app.command("redrive")
def dlq_redrive(
    letter_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="One dead letter.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter not redriven yet.")] = False,
    topic: Annotated[str | None, typer.Option("--topic", "-t", help="With --all: only this topic.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Redrive ID again even if it was.")] = False,
    account: Annotated[
        str | None,
        typer.Option("--account", help="Release this quarantined account: its letters, in order, then lift."),
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", "-g", help="With --account: only this consumer group.")
    ] = None,
    wait_s: Annotated[
        float, typer.Option("--wait", min=0, help="With --account: seconds to wait for the lift.")
    ] = 30.0,
) -> None:
    """Send dead letters back to their original topic: original bytes, key and headers."""
    if sum([letter_id is not None, all_, account is not None]) != 1:
        raise CliError("give a dead-letter ID, --all or --account", USAGE_EXIT)
    if letter_id is not None and topic is not None:
        raise CliError("--topic goes with --all", USAGE_EXIT)
    if group is not None and account is None:
        raise CliError("--group goes with --account", USAGE_EXIT)
    if account is not None:
        _release(account, group, wait_s)
        return
    settings = _settings()

    async def run() -> tuple[list[str], list[str]]:
        if letter_id is not None:
            wanted = _parse_id(letter_id)
            letters = [await _one_letter(settings, wanted)]
        else:
            letters = await _letters(settings, await _dlq_topics(settings, topic))
        return await _redrive(settings, letters, force=force and letter_id is not None)

    sent, skipped = _run(run())
    for item in sent:
        out.print(f"redriven {item}")
    if letter_id is not None and skipped:
        if skipped[0] != str(_parse_id(letter_id)):
            raise CliError(f"not redriven: {skipped[0]}")
        raise CliError(f"{letter_id} was redriven before; add --force to send it again")
    for item in skipped:
        if "(" in item:
            out.print(f"skipped {item}")
    out.print(f"Redrove {len(sent)} dead letter(s); skipped {len(skipped)} (redriven before, or as listed).")


async def _redrive(
    settings: Settings, letters: list[DeadLetter], *, force: bool
) -> tuple[list[str], list[str]]:
    sent: list[str] = []
    skipped: list[str] = []
    async with dynamodb_client(settings) as client, broker.producer(settings) as producer:
        log = RedriveLog(client, settings.dynamodb_table)
        for letter in letters:
            if letter.truncated:
                skipped.append(f"{letter.id} (truncated: its original bytes are gone)")
                continue
            if letter.quarantine is not None:
                # Alone it would only be parked again: it goes back with its account's others, in order.
                account = (letter.key or b"").decode(errors="replace")
                skipped.append(f"{letter.id} (of a quarantined account: use --account {account})")
                continue
            claimed = await log.claim(letter.id, letter.original_topic, force=force)
            if not claimed:
                skipped.append(str(letter.id))
                continue
            try:
                await producer.send_and_wait(
                    letter.original_topic,
                    value=letter.value,
                    key=letter.key,
                    headers=letter.resend_headers(),
                )
            except BaseException:
                await log.release(letter.id)
                raise
            sent.append(f"{letter.id} -> {letter.original_topic}")
    return sent, skipped


def _release(account: str, group: str | None, wait_s: float) -> None:
    if group is not None and group not in CONSUMER_GROUPS:
        raise CliError(f"no such consumer group: {group} (one of {', '.join(CONSUMER_GROUPS)})", USAGE_EXIT)
    settings = _settings()

    async def run() -> list[ReleaseResult]:
        groups = [group] if group is not None else list(CONSUMER_GROUPS)
        found = await quarantined_groups(settings, account, groups)
        if not found:
            where = f"group {group}" if group else "any consumer group"
            raise CliError(f"account {account} is not quarantined in {where}")
        return [await release_account(settings, g, CONSUMER_GROUPS[g], account, wait_s=wait_s) for g in found]

    results = _run(run())
    for result in results:
        for item in result.sent:
            out.print(f"redriven {item}")
        out.print(f"{result.group}: redrove {len(result.sent)} message(s) of {account}; {result.detail}.")
    if any(r.outcome in {"failed_again", "parked_meanwhile"} for r in results):
        raise typer.Exit(1)


# --- lag, topics -------------------------------------------------------------------------------------


@app.command("lag")
def lag_command() -> None:
    """Per consumer group and partition: committed offset, end offset and lag."""
    settings = _settings()

    async def run() -> list[tuple[str, str, int, int | None, int]]:
        async with broker.admin_client(settings) as admin, broker.reader(settings) as consumer:
            topics = set(await broker.list_topics(admin))
            groups = await broker.existing_groups(admin)
            wanted = {g: [t for t in ts if t in topics] for g, ts in CONSUMER_GROUPS.items() if g in groups}
            ends = await broker.topic_ends(
                consumer, sorted({t for ts in wanted.values() for t in ts}), settings
            )
            rows: list[tuple[str, str, int, int | None, int]] = []
            for group, group_topics in wanted.items():
                tps = sorted(
                    (tp for tp in ends if tp.topic in group_topics), key=lambda tp: (tp.topic, tp.partition)
                )
                committed = await broker.committed_offsets(admin, group, tps)
                rows.extend((group, tp.topic, tp.partition, committed[tp], ends[tp]) for tp in tps)
            return rows

    rows = _run(run())
    table = Table(title="consumer lag")
    for column in ("group", "topic", "partition", "committed", "end", "lag"):
        table.add_column(column, justify="left" if column in {"group", "topic"} else "right")
    totals: dict[str, int] = {}
    for group, topic, partition, committed, end in rows:
        lag = end - (committed if committed is not None else 0)
        totals[group] = totals.get(group, 0) + lag
        table.add_row(
            group, topic, str(partition), "-" if committed is None else str(committed), str(end), str(lag)
        )
    out.print(table)
    out.print("Total lag: " + (", ".join(f"{g} {n}" for g, n in totals.items()) or "no consumer groups yet"))


@app.command("topics")
def topics_command() -> None:
    """The topics with their partitions and end offsets."""
    settings = _settings()

    async def run() -> list[tuple[str, list[int]]]:
        async with broker.admin_client(settings) as admin, broker.reader(settings) as consumer:
            names = await broker.list_topics(admin)
            ends = await broker.topic_ends(consumer, names, settings)
        return [
            (n, [ends[tp] for tp in sorted(ends, key=lambda tp: tp.partition) if tp.topic == n])
            for n in names
        ]

    rows = _run(run())
    table = Table(title="topics")
    for column in ("topic", "partitions", "end offsets", "messages"):
        table.add_column(column, justify="left" if column in {"topic", "end offsets"} else "right")
    for name, ends in rows:
        table.add_row(name, str(len(ends)), " ".join(str(e) for e in ends), str(sum(ends)))
    out.print(table)


# --- reconcile ---------------------------------------------------------------------------------------


@app.command("reconcile")
def reconcile_command() -> None:
    """Recompute every account's cash and holdings from its events; exit 1 on any mismatch."""
    settings = _settings()

    async def run() -> Any:
        accounts: dict[str, Any] = {}
        async with dynamodb_client(settings) as client:
            with out.status("scanning the table..."):
                async for page in scan_pages(client, settings.dynamodb_table):
                    for item in page:
                        add_item(accounts, item)
        return reconcile(accounts)

    report = _run(run())
    summary = Table(title="reconciliation")
    summary.add_column("accounts", justify="right")
    summary.add_column("events", justify="right")
    summary.add_column("holdings", justify="right")
    summary.add_column("duplicate event ids", justify="right")
    summary.add_column("mismatches", justify="right")
    summary.add_row(
        str(report.accounts),
        str(report.events),
        str(report.holdings_checked),
        str(report.duplicate_event_ids),
        str(len(report.mismatches)),
    )
    out.print(summary)
    if report.mismatches:
        table = Table(title="mismatches")
        for column in ("account", "what", "stored", "from events"):
            table.add_column(column)
        for m in report.mismatches:
            table.add_row(m.account_id, m.what, "-" if m.stored is None else str(m.stored), str(m.expected))
        out.print(table)
    if report.mismatches or report.duplicate_event_ids:
        raise typer.Exit(1)
    out.print("OK: every balance and holding matches its events.")


# --- users -------------------------------------------------------------------------------------------


@users_app.command("promote")
def users_promote(username: Annotated[str, typer.Argument(help="the user to make an admin")]) -> None:
    """Grant the admin role (read-only access to any account and command); effective at next login."""
    _set_role(username, "admin")


@users_app.command("demote")
def users_demote(username: Annotated[str, typer.Argument(help="the admin to make a customer again")]) -> None:
    """Withdraw the admin role; tokens already issued keep it until they expire or are revoked."""
    _set_role(username, "customer")


def _set_role(username: str, role: str) -> None:
    settings = _settings()

    async def run() -> bool:
        async with dynamodb_client(settings) as client:
            return await DynamoAccounts(client, settings.dynamodb_table).set_role(username, role) is not None

    if not _run(run()):
        raise CliError(f"no user named {username!r}", 1)
    audit("admin.role_changed", result="ok", username=username, role=role, actor="operator-cli")
    out.print(f"{username} is now {role}.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
