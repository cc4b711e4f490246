"""jobs list|run: the agent's scheduled jobs, their last run and next run; run one now in this process."""

from __future__ import annotations

from appliance.commands.output import info, print_json, print_table
from appliance.errors import EXIT_FAILURE


def register(commands) -> None:
    jobs = commands.add_parser("jobs", help="the agent's scheduled jobs: last run, outcome, next run; run one now") \
        .add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    p = jobs.add_parser("list", help="each job: schedule, last run, outcome, next run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_jobs_list)
    p = jobs.add_parser("run", help="run one job now in this process, recorded like a scheduled run",
                        description="Run one job now (e.g. backup, nightly_check). It takes the same per-job lock "
                        "as the agent, so it refuses while the agent is running that job. Exit 1 if it fails.")
    p.add_argument("name", help="the job's name, as `appliance jobs list` shows it")
    p.set_defaults(handler=cmd_jobs_run)


def _scheduler(ctx):
    from appliance.jobs.scheduler import JobScheduler
    return JobScheduler(ctx.app, background=False)


def cmd_jobs_list(args, ctx) -> int:
    rows = _scheduler(ctx).status()
    if args.json:
        print_json(rows)
        return 0
    table = []
    for row in rows:
        last = row["last_run"] or {}
        table.append([row["name"], row["schedule"], last.get("started_at") or "never", last.get("outcome") or "-",
                      row["next_run"], (last.get("detail") or "")[:60]])
    print_table(["job", "schedule", "last run", "outcome", "next run", "detail"], table)
    return 0


def cmd_jobs_run(args, ctx) -> int:
    result = _scheduler(ctx).run_now(args.name)
    if result.outcome == "busy":
        info(f"{args.name} is running already (in the agent or another process on this database); not run again")
        return EXIT_FAILURE
    print(f"{result.job}: {result.outcome}: {result.detail}")
    return 0 if result.outcome == "ok" else EXIT_FAILURE
