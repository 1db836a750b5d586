"""The bad-input corpus: every input a user (or a broken client) can throw at a surface,
with what it must answer. Each case gets a clear one-line error, or — for actions that
reach the proxy — is set aside (failed) with its reason; never a traceback, never a crash.

Categories and where they run:

=========  =====================================================  ================================
category   cases                                                  test module
=========  =====================================================  ================================
cli        ``batchfed …`` argument lists (in-process and a few     test_cli_corpus.py
           through the real console script)
magic      ``%fed`` / ``%%fed`` lines and cell bodies              test_magic_corpus.py
yaml       tests/data/bad (126 files) and tests/data/bad-settings  test_cli_corpus.py (files through
           (11), reused, not copied                                the CLI), test_magic_corpus.py
rest       raw HTTP to localbatch: unsigned, forged, malformed     test_rest_corpus.py
           JSON, wrong types, oversized, bad paths, api-versions
action     actions and payloads written to the store: malformed,   test_action_corpus.py
           oversized, unknown version / federation, wrong kind
=========  =====================================================  ================================

``{...}`` in an argument is replaced by the test (``{missing}`` a file that does not exist,
``{dir}`` a folder, ``{binary}`` a non-UTF-8 file, ``{good_jobs}`` a valid jobs file, ``{long}``
a 5,000-character word, ``{bad_fed}`` an invalid federation.yaml).
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
BAD_FILES = sorted((DATA / "bad").glob("*.yaml"))
BAD_SETTINGS = sorted((DATA / "bad-settings").glob("*.yaml"))
UUID0 = "9f1f3c53-0000-4000-8000-000000000000"

#: (case id, argv, a fragment the error must contain). Every case must fail: exit code ≠ 0.
CLI: list[tuple[str, list[str], str]] = [
    ("unknown-command", ["bogus"], "No such command"),
    ("unknown-fed-verb", ["fed", "bogus"], "No such command"),
    ("unknown-option", ["fed", "list", "--bogus"], "No such option"),
    ("jobs-add-no-id", ["fed", "jobs", "add"], "Missing argument"),
    ("jobs-add-no-jobs", ["fed", "jobs", "add", "bad"], "no jobs given"),
    ("jobs-add-missing-file", ["fed", "jobs", "add", "bad", "{missing}"], "file not found"),
    ("jobs-add-folder", ["fed", "jobs", "add", "bad", "{dir}"], "is a folder"),
    ("jobs-add-binary", ["fed", "jobs", "add", "bad", "{binary}"], "not UTF-8"),
    ("jobs-add-long-name", ["fed", "jobs", "add", "bad", "{long}"], "cannot read"),
    ("jobs-add-twice", ["fed", "jobs", "add", "bad", "{good_jobs}", "--jobs", "{good_jobs}"], "give the jobs once"),
    ("jobs-add-unknown-fed", ["fed", "jobs", "add", "nope", "{good_jobs}"], "'nope' does not exist"),
    ("jobs-add-bad-fed-id", ["fed", "jobs", "add", "Bad_Id!", "{good_jobs}"], "federation id"),
    ("jobs-add-timeout-text", ["fed", "jobs", "add", "bad", "{good_jobs}", "--timeout", "soon"], "not a valid float"),
    ("jobs-add-extra-arg", ["fed", "jobs", "add", "bad", "{good_jobs}", "extra"], "unexpected extra argument"),
    ("create-bad-chars", ["fed", "create", "Bad_Id!"], "federation id"),
    ("create-empty", ["fed", "create", ""], "federation id"),
    ("create-too-long", ["fed", "create", "a" * 64], "federation id"),
    ("create-very-long", ["fed", "create", "{long}"], "federation id"),
    ("create-unicode", ["fed", "create", "fédération"], "federation id"),
    ("create-exists", ["fed", "create", "bad"], "exists"),
    ("create-no-id", ["fed", "create"], "Missing argument"),
    ("pool-add-nothing", ["fed", "pool", "add", "bad"], "no pool given"),
    ("pool-add-bad-url", ["fed", "pool", "add", "bad", "--pool-id", "p", "--batch-service-url", "notaurl"], "batch service url"),
    (
        "pool-add-foreign-url",
        ["fed", "pool", "add", "bad", "--pool-id", "p", "--batch-service-url", "https://evil.example.com"],
        "batch service url",
    ),
    (
        "pool-add-url-with-query",
        ["fed", "pool", "add", "bad", "--pool-id", "p", "--batch-service-url", "https://acct.westeurope.batch.azure.com/?sig=x"],
        "no query",
    ),
    ("pool-add-both", ["fed", "pool", "add", "bad", "--pool-config", "{good_pool}", "--pool-id", "p"], "not both"),
    ("pool-add-missing-pool", ["fed", "pool", "add", "bad", "--pool-id", "nosuchpool", "--account", "lab1"], "does not exist"),
    ("pool-add-bad-config", ["fed", "pool", "add", "bad", "--pool-config", "{missing}"], "file not found"),
    (
        "pool-add-url-and-account",
        [
            "fed",
            "pool",
            "add",
            "bad",
            "--pool-id",
            "p",
            "--account",
            "lab1",
            "--batch-service-url",
            "https://acct.westeurope.batch.azure.com",
        ],
        "not both",
    ),
    ("pool-remove-all-and-ids", ["fed", "pool", "remove", "bad", "--all", "--pool-id", "x", "--yes"], "cannot be combined"),
    ("pool-remove-unknown", ["fed", "pool", "remove", "bad", "--pool-id", "nosuch", "--yes"], "nosuch"),
    ("pool-remove-unconfirmed", ["fed", "pool", "remove", "bad", "--all"], "add -y/--yes"),
    ("jobs-list-queued-and-blocked", ["fed", "jobs", "list", "bad", "--queued", "--blocked"], "cannot be combined"),
    (
        "jobs-list-job-and-schedule",
        ["fed", "jobs", "list", "bad", "--job-id", "a", "--jobschedule-id", "b"],
        "cannot be combined",
    ),
    ("jobs-term-no-selector", ["fed", "jobs", "term", "bad", "--yes"], "name at least one"),
    ("jobs-term-all-and-ids", ["fed", "jobs", "term", "bad", "--all-jobs", "--job-id", "x", "--yes"], "cannot be combined"),
    ("jobs-del-bad-job-id", ["fed", "jobs", "del", "bad", "--job-id", " padded ", "--force", "--yes"], "job id"),
    ("jobs-zap-not-uuid", ["fed", "jobs", "zap", "bad", "--unique-id", "not-a-uuid", "--yes"], "not a UUID"),
    ("jobs-zap-unknown", ["fed", "jobs", "zap", "bad", "--unique-id", UUID0, "--yes"], "does not exist"),
    ("jobs-zap-missing-option", ["fed", "jobs", "zap", "bad"], "--unique-id"),
    ("destroy-unconfirmed", ["fed", "destroy", "bad"], "add -y/--yes"),
    ("destroy-unknown", ["fed", "destroy", "nope", "--yes"], "'nope' does not exist"),
    ("explain-bad-policy", ["fed", "explain", "bad", "{good_jobs}", "--policy", "worst-fit"], "worst-fit"),
    ("explain-missing-file", ["fed", "explain", "bad", "{missing}"], "file not found"),
    ("output-unplaced-job", ["fed", "output", "bad", "--job-id", "never-submitted", "--task-id", "t"], "no location"),
    ("output-traversal-task", ["fed", "output", "bad", "--job-id", "{placed}", "--task-id", "../../localbatch/key"], "task"),
    (
        "output-max-bytes-text",
        ["fed", "output", "bad", "--job-id", "j", "--task-id", "t", "--max-bytes", "lots"],
        "not a valid integer",
    ),
    ("output-missing-task", ["fed", "output", "bad", "--job-id", "{placed}", "--task-id", "no-such-task"], "TaskNotFound"),
    ("output-missing-stderr-task", ["fed", "output", "bad", "--job-id", "{placed}", "--task-id", "nope", "--stderr"], "nope"),
    ("tasks-no-job", ["fed", "tasks", "bad"], "--job-id"),
    ("tasks-unknown-job", ["fed", "tasks", "bad", "--job-id", "never-submitted"], "no location"),
    ("logs-bad-count", ["fed", "proxy", "logs", "-n", "abc"], "not a valid integer"),
    ("logs-negative-count", ["fed", "proxy", "logs", "-n", "-5"], "-5: must be 0 or more"),
    (
        "output-max-bytes-negative",
        ["fed", "output", "bad", "--job-id", "j", "--task-id", "t", "--max-bytes", "-1"],
        "-1: must be 0 or more",
    ),
    ("jobs-add-timeout-nan", ["fed", "jobs", "add", "bad", "{good_jobs}", "--wait", "--timeout", "nan"], "nan: must be"),
    ("jobs-add-timeout-negative", ["fed", "jobs", "add", "bad", "{good_jobs}", "--timeout", "-3"], "-3: must be"),
    ("jobs-add-wait-unknown", ["fed", "jobs", "add", "bad", "{good_jobs}", "--wait", "finished"], "finished"),
    ("logs-task-no-job", ["fed", "logs", "bad"], "--job-id"),
    ("results-unknown-job", ["fed", "results", "bad", "--job-id", "never-submitted"], "never-submitted"),
    # harmless if accepted: resuming a running proxy, stopping one that does not exist
    ("resume-timeout-inf", ["fed", "proxy", "resume", "--timeout", "inf"], "inf: must be"),
    ("stop-timeout-huge", ["fed", "proxy", "stop", "--proxy-id", "no-such-proxy", "--timeout", "1e999"], "1e999: must be"),
    ("pool-resize-negative", ["pool", "resize", "--pool-config", "{good_pool}", "--dedicated", "-2"], "-2: must be"),
    ("proxy-create-negative-standby", ["fed", "proxy", "create", "--config", "{bad_fed}", "--standby", "-1"], "-1: must be"),
    ("proxy-start-missing-config", ["fed", "proxy", "start", "--config", "{missing}"], "file not found"),
    ("proxy-start-bad-config", ["fed", "proxy", "start", "--config", "{bad_fed}"], "polling_interval"),
    ("up-bad-config", ["up", "--config", "{bad_fed}"], "polling_interval"),
    ("list-unknown-fed", ["fed", "list", "--federation-id", "nope"], "'nope' does not exist"),
    ("config-validate-missing", ["config", "validate", "{missing}"], "file not found"),
    ("config-validate-nothing", ["config", "validate"], "Missing argument"),
    ("pool-cli-bad-url", ["pool", "list", "--batch-service-url", "ftp://x"], "batch service url"),
]

#: run through the real console script as well (the others in-process with click's runner)
CLI_SUBPROCESS = [
    "unknown-command",
    "jobs-add-missing-file",
    "create-bad-chars",
    "destroy-unconfirmed",
    "pool-add-bad-url",
    "jobs-zap-not-uuid",
    "logs-negative-count",
    "output-missing-task",
]

#: (case id, line, cell or None, the exception type name, a fragment of its one-line message)
MAGIC: list[tuple[str, str, str | None, str, str]] = [
    ("no-verb-option", "--bogus", None, "UsageError", "unrecognized arguments"),
    ("unknown-verb", "bogus", None, "UsageError", "invalid choice"),
    ("unbalanced-quote", 'create "half', None, "UsageError", "cannot split"),
    ("create-missing-id", "create", None, "UsageError", "the following arguments are required"),
    ("create-bad-id", "create Bad_Id!", None, "InvalidIdError", "federation id"),
    ("create-exists", "create bad", None, "ConflictError", "exists"),
    ("cell-on-create", "create x", "job_specifications: []", "UsageError", "takes no cell body"),
    ("cell-yaml-error", "submit bad", "job_specifications: [\n - id: x", "ConfigError", "<cell>: line"),
    ("cell-empty", "submit bad", "", "UsageError", "the cell body is empty"),
    ("cell-only-comment", "submit bad", "# nothing here\n", "ConfigError", "<cell>"),
    ("cell-tab-indent", "submit bad", "job_specifications:\n\t- id: x\n", "ConfigError", "<cell>"),
    (
        "cell-duplicate-key",
        "submit bad",
        "job_specifications:\n- id: a\n  id: b\n  tasks: [{command: x}]\n",
        "ConfigError",
        "duplicate key",
    ),
    ("cell-unknown-key", "explain bad", "job_specifications:\n- id: a\n  taskz: [{command: x}]\n", "ConfigError", "taskz"),
    (
        "cell-python-tag",
        "submit bad",
        "job_specifications: !!python/object/apply:os.system ['echo pwned']\n",
        "ConfigError",
        "could not determine a constructor",
    ),
    ("cell-self-alias", "submit bad", "job_specifications: &a [*a]\n", "ConfigError", "contains itself"),
    ("cell-not-a-mapping", "submit bad", "- just\n- a list\n", "ConfigError", "expected a mapping"),
    (
        "submit-unknown-fed",
        "submit nope",
        "job_specifications: [{id: a, tasks: [{command: x}]}]\n",
        "NotFoundError",
        "'nope' does not exist",
    ),
    ("destroy-without-yes", "destroy bad", None, "UsageError", "add -y/--yes"),
    ("out-not-identifier", "list -o 1bad", None, "UsageError", "not a Python identifier"),
    ("pools-unknown-fed", "pools nope", None, "NotFoundError", "'nope' does not exist"),
    ("zap-not-uuid", "jobs zap bad --unique-id x -y", None, "InvalidIdError", "not a UUID"),
    ("explain-bad-policy", "explain bad --policy worst", "job_specifications: []", "UsageError", "invalid choice"),
    ("pool-add-ftp-url", "pool add bad --pool-id p --batch-service-url ftp://x", None, "ConfigError", "batch service url"),
    ("jobs-list-conflicting", "jobs bad --queued --blocked", None, "ConfigError", "cannot be combined"),
    ("logs-bad-count", "proxy logs -n many", None, "UsageError", "invalid int value"),
    ("logs-negative-count", "proxy logs -n -5", None, "UsageError", "-5: must be 0 or more"),
    ("output-max-bytes-negative", "output bad --job-id j --task-id t --max-bytes -1", None, "UsageError", "-1: must be"),
    ("submit-timeout-nan", "submit bad --wait --timeout nan", "job_specifications: []\n", "UsageError", "nan: must be"),
    ("submit-wait-unknown", "submit bad --wait finished", "job_specifications: []\n", "UsageError", "invalid choice"),
    ("resume-timeout-inf", "proxy resume --timeout inf", None, "UsageError", "inf: must be"),
    ("output-unplaced", "output bad --job-id never --task-id t", None, "NotFoundError", "no location"),
    ("submit-missing-file", "submit bad /nonexistent/jobs.yaml", None, "ConfigError", "file not found"),
]
