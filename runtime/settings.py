"""The one settings object: every environment variable the pipeline reads."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ExactAppSettings", "MissingSetting", "Settings", "get_settings"]


class MissingSetting(RuntimeError):
    """A command needs a setting that is not set; the message names the variable."""

    def __init__(self, *variables: str) -> None:
        self.variables = variables
        names = ", ".join(variables)
        super().__init__(f"missing setting: {names} (set it in the environment or in .env)")


class ExactAppSettings(BaseModel):
    """One entry of EXACT_APPS: an app registered in Exact's App Center, on its host."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(min_length=1)
    client_id: str = Field(min_length=1, max_length=100)
    client_secret: SecretStr
    webhook_secret: SecretStr | None = None
    # Unset: EXACT_REDIRECT_URI.
    redirect_uri: str | None = None


_APP_TABLE = TypeAdapter(dict[str, ExactAppSettings])
# A connection's `app` column holds the name.
_APP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")


class Settings(BaseSettings):
    """Configuration read from the environment (and `.env`); names are a public contract.

    Tests and tools pass values to the initialiser, which wins over the environment:

        Settings(database_url="sqlite:///x.db", redis_url="redis://localhost:6379/3")
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Public contract (issue 2): keep these names.
    database_url: str = "sqlite:///./exact-pipeline.db"
    redis_url: str = "redis://localhost:6379/0"
    exact_base_url: str = "https://start.exactonline.nl"
    exact_client_id: str | None = None
    exact_client_secret: SecretStr | None = None
    exact_redirect_uri: str | None = None
    exact_webhook_secret: SecretStr | None = None
    token_encryption_key: SecretStr | None = None
    public_url: str = "http://localhost:8000"
    sinks: str = "sql"
    push_url: str | None = None
    push_secret: SecretStr | None = None

    # Extensions.
    # JSON object, app name -> {"base_url", "client_id", "client_secret"[, "webhook_secret", "redirect_uri"]}: more
    # Exact apps in this deployment (a BE host beside NL). The EXACT_* settings stay the app named `default`.
    exact_apps: SecretStr | None = None
    redis_prefix: str = Field("exact-pipeline:", description="Prefix of every Redis key, the Celery broker's too")
    log_level: str = "INFO"
    webhook_max_body_bytes: int = 64 * 1024
    # The whole body must arrive within this; Exact sends a few hundred bytes at once.
    webhook_body_timeout_seconds: float = 10.0
    # Bounds on a request's head, enforced before the app sees it (receiver/serving.py); Exact sends a few small
    # headers. The head must arrive within the timeout: the body timeout above starts only once it has.
    receiver_max_header_bytes: int = 16 * 1024
    receiver_max_headers: int = 64
    receiver_header_timeout_seconds: float = 10.0
    # Open connections per receiver process; past it a new connection is answered 503 and closed.
    receiver_max_connections: int = 512
    dedupe_window_seconds: int = 24 * 3600
    coalesce_window_seconds: float = 2.0
    # Off: every flush waits the whole window from its first event (the old behaviour; benchmarks' baseline).
    coalesce_adaptive: bool = True
    delta_sync_minutes: float = 15.0
    # The safety net backs a quiet lane with a healthy webhook off, doubling, up to this many minutes between walks
    # (at most DELTA_SYNC_MINUTES: no backoff); a change whose webhook was lost arrives within this plus one cycle.
    delta_sync_max_minutes: float = 120.0
    # The old cycle: every lane walked, each with its own sync/Deleted call, every cycle (benchmarks' baseline).
    delta_sync_per_lane: bool = False
    silent_subscription_hours: float = 48.0
    # A push lane whose oldest pending delivery waited longer than this is pushed as `System.lane_stuck`.
    lane_stuck_minutes: float = 30.0
    # Beat records one division per connection every this many hours (schema guard); 0: off, since it costs calls.
    schema_record_hours: float = 0.0
    default_topics: str = "Accounts,Contacts,Items,SalesInvoices"
    # JSON object, topic -> field names: narrows what is read of a topic (its `$select`); keys, versions and line
    # numbers are always read. Empty: every field. A topic or field the catalogue lacks stops the workers at start.
    topic_fields: str = ""
    rate_limit_per_minute: int = 60
    rate_limit_per_day: int = 5000
    rate_limit_max_wait_seconds: float = 120.0
    # Length of Exact's "minute"; only tests and benchmarks against the sandbox shrink it.
    rate_limit_window_seconds: float = 60.0
    # Budget classes: each class's reserved share of a division's minute and day, which the classes below it cannot
    # take (the classes above may borrow what it leaves unused). At 60 a minute: commands 12 (a write costs 2 to 5
    # calls), webhook fetches 18 (a burst's few keyed fetches), delta sync 12 (an idle cycle costs 2 per topic),
    # a backfill 18 (1,000-record pages: 18,000 records a minute it can always count on). The sum may not exceed 1.
    budget_share_command: float = Field(default=0.2, ge=0.0, le=1.0)
    budget_share_webhook: float = Field(default=0.3, ge=0.0, le=1.0)
    budget_share_delta: float = Field(default=0.2, ge=0.0, le=1.0)
    budget_share_backfill: float = Field(default=0.3, ge=0.0, le=1.0)
    delivery_max_attempts: int = 8
    # Push lanes (keys) one delivery task carries: their state changes and Redis calls are made once per batch.
    delivery_batch_keys: int = Field(default=100, ge=1, le=1000)
    # Pushes: backoff base and cap (the cap stays well under the visibility timeout), the POST timeout, and how long
    # a pending delivery may wait before the sweeper dispatches its lane again.
    delivery_backoff_seconds: float = 5.0
    delivery_backoff_max_seconds: float = 900.0
    push_timeout_seconds: float = 15.0
    delivery_sweep_after_seconds: float = 60.0
    # Circuit breaker per push target: this many failed POSTs in a row open it for the cooldown, during which
    # deliveries wait without a POST; then one probe decides whether it closes.
    delivery_breaker_failures: int = 5
    delivery_breaker_cooldown_seconds: float = 60.0
    # Delivered and superseded delivery rows older than this are pruned (each key's newest delivered row stays, for
    # ordering); 0 keeps every row.
    delivery_retention_days: float = 30.0
    # `exact-pipeline trace`: webhooks and reads kept per record (the newest this many), and for at most this long.
    trace_history: int = 20
    trace_retention_days: float = 30.0
    # A TOML file of named http sinks (URL, secret, topic and division filters, suppress_echo; see
    # delivery/sinks/routes.py), pushed to beside those SINKS names. Unset: none. Workers read it at start.
    sinks_file: str | None = None
    # Longer than any task may run, or Redis hands a running task to a second worker; crash tests shrink it.
    broker_visibility_timeout: int = 3600
    commands_token: SecretStr | None = None
    commands_max_body_bytes: int = 256 * 1024
    # How long a resolved reference (GL code → ID in a division) is trusted; a stale hit is caught by the read-back.
    reference_cache_seconds: float = 300.0
    # A command still queued after this was lost on its way to the workers (Redis emptied); the sweeper resends it.
    commands_sweep_after_seconds: float = 60.0
    # A command run is interrupted (soft limit) after this and killed 30 s later; a command still `running` past
    # both, plus the sweep delay, had its worker die, and the sweeper settles it as `unknown`.
    commands_time_limit_seconds: float = 300.0
    # How long a worker keeps trying to record a command's outcome while the database refuses (locked, down);
    # after that the outcome waits in Redis for the sweeper.
    commands_finish_retry_seconds: float = 60.0
    # Commands' share of Exact's 10 errors an hour per endpoint (fetching keeps 7): a client's bad commands wait
    # instead of pausing the endpoint for fetching.
    commands_error_budget: int = 2
    # A create whose answer was lost is looked up after this pause (Exact may still be committing it).
    commands_settle_seconds: float = 2.0
    # Prometheus `/metrics` of a worker (every pool process's counters, and the database and Redis state) and of beat
    # (the state only); 0: not served. Two workers on one host need two ports.
    worker_metrics_port: int = 0
    beat_metrics_port: int = 0
    # The operator's web console (`exact-pipeline console`): off unless CONSOLE_TOKEN is set. Its session cookie is
    # signed with CONSOLE_SECRET, or a key derived from the token when unset (a new token then ends every session).
    console_token: SecretStr | None = None
    console_secret: SecretStr | None = None
    # Localhost by default: an operator tool, not the internet-facing receiver.
    console_host: str = "127.0.0.1"
    console_port: int = 8090
    console_session_hours: float = 12.0

    @property
    def callback_url(self) -> str:
        """The URL Exact POSTs webhooks to."""
        return self.public_url.rstrip("/") + "/webhooks/exact"

    @property
    def sink_names(self) -> list[str]:
        return [name.strip() for name in self.sinks.split(",") if name.strip()]

    @property
    def default_topic_list(self) -> list[str]:
        return [name.strip() for name in self.default_topics.split(",") if name.strip()]

    @property
    def topic_field_lists(self) -> dict[str, list[str]]:
        """`topic_fields` parsed; ValueError when it is not a JSON object of lists of field names."""
        if not self.topic_fields.strip():
            return {}
        try:
            parsed = json.loads(self.topic_fields)
        except ValueError as exc:
            raise ValueError(f"TOPIC_FIELDS is not JSON: {exc}") from exc
        if not isinstance(parsed, dict) or not all(
            isinstance(names, list) and all(isinstance(n, str) for n in names) for names in parsed.values()
        ):
            raise ValueError('TOPIC_FIELDS must be a JSON object of field-name lists: {"Accounts": ["Name"]}')
        return {str(topic): list(names) for topic, names in parsed.items()}

    @property
    def exact_app_table(self) -> dict[str, ExactAppSettings]:
        """`exact_apps` parsed; ValueError naming EXACT_APPS, never a secret, when it is not such an object."""
        value = self.exact_apps
        raw = (value.get_secret_value() if isinstance(value, SecretStr) else value or "").strip()
        if not raw:
            return {}
        try:
            table = _APP_TABLE.validate_json(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "the value"
            # Not chained: a ValidationError's text quotes its input, secrets and all.
            raise ValueError(f"EXACT_APPS: {where}: {first.get('msg', 'invalid')}") from None
        for name in table:
            if not _APP_NAME.fullmatch(name):
                raise ValueError(f"EXACT_APPS: app name {name!r}: lower-case letters, digits, - and _, up to 50")
        return table

    @property
    def budget_shares(self) -> dict[str, float]:
        """The BUDGET_SHARE_* settings by class name."""
        return {name: getattr(self, f"budget_share_{name}") for name in ("command", "webhook", "delta", "backfill")}

    @model_validator(mode="after")
    def _shares_fit(self) -> Settings:
        total = sum(self.budget_shares.values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"BUDGET_SHARE_* sum to {total:.2f}; the reserves must fit in the budget (at most 1)")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def require(self, *fields: str) -> None:
        """Raise `MissingSetting` naming every listed field that is unset or empty."""
        missing = []
        for name in fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if not value:
                missing.append(name.upper())
        if missing:
            raise MissingSetting(*missing)

    def child_environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` (say, os.environ) with these settings as its variables, secrets in clear: what a child process
        needs to build the same settings. Variables of settings left unset are dropped from `base`, not inherited."""
        names = {name.upper() for name in type(self).model_fields}
        env = {k: v for k, v in base.items() if k.upper() not in names}
        for name, value in self.model_dump().items():
            if value is not None:
                env[name.upper()] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return env

    def secret_values(self) -> list[str]:
        """Every secret that is set, for the log redactor: none of them may ever reach a log line."""
        names = (
            "exact_client_secret",
            "exact_webhook_secret",
            "exact_apps",
            "token_encryption_key",
            "push_secret",
            "commands_token",
            "console_token",
            "console_secret",
        )
        values = [v.get_secret_value() for n in names if (v := getattr(self, n)) is not None] + self._app_secrets()
        # Each key of a rotation list on its own, and the passwords inside URLs (an error may quote one bare).
        keys = self.token_encryption_key.get_secret_value().split(",") if self.token_encryption_key else []
        passwords = [urlsplit(url).password for url in (self.database_url, self.redis_url, self.push_url) if url]
        extra = [k.strip() for k in keys] + [form for p in passwords if p for form in (p, unquote(p))]
        return [v for v in dict.fromkeys([*values, *extra]) if v]

    def _app_secrets(self) -> list[str]:
        try:
            table = self.exact_app_table
        except ValueError:
            return []  # the whole value is redacted all the same, and its first use stops the process
        return [s.get_secret_value() for app in table.values() for s in (app.client_secret, app.webhook_secret) if s]

    def secret(self, name: str) -> str:
        """The plain value of a secret setting, after `require`."""
        self.require(name)
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built once from the environment."""
    return Settings()
