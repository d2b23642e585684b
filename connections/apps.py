"""The Exact apps of a deployment: `EXACT_APPS`, plus the `EXACT_*` settings as the app named `default`.

An app is one registration in Exact's App Center: a host, a client id and secret, a webhook secret. Each connection
belongs to one app (`connections.app`); its client, tokens and budgets are that app's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from runtime.settings import ExactAppSettings, MissingSetting, Settings

__all__ = ["DEFAULT_APP", "ExactApp", "ExactApps", "UnknownApp", "apps_from_settings", "normal_client_id"]

DEFAULT_APP = "default"


class UnknownApp(LookupError):
    """A connection or a command line names an app this deployment does not configure."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"no Exact app {name!r} is configured (known: {', '.join(known) or 'none'}); see EXACT_APPS")


def normal_client_id(client_id: str) -> str:
    """A client id as compared: Exact writes the same GUID in either case, sometimes in braces."""
    return client_id.strip().strip("{}").lower()


@dataclass(frozen=True)
class ExactApp:
    """One app. `client_id` and `client_secret` are None only for `default` when EXACT_CLIENT_ID/SECRET are unset."""

    name: str
    base_url: str
    client_id: str | None
    client_secret: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None

    def setting(self, part: str) -> str:
        """The variable a part of this app is read from, for error messages."""
        return f"EXACT_{part.upper()}" if self.name == DEFAULT_APP else f"EXACT_APPS.{self.name}.{part}"

    def credentials(self) -> tuple[str, str]:
        """Client id and secret, or `MissingSetting` naming what is unset."""
        missing = [
            self.setting(p) for p, v in (("client_id", self.client_id), ("client_secret", self.client_secret)) if not v
        ]
        if missing:
            raise MissingSetting(*missing)
        return str(self.client_id), str(self.client_secret)


@dataclass(frozen=True)
class ExactApps:
    """The configured apps by name. `by_client_id` matters only when `several` (EXACT_APPS is set): with the
    `EXACT_*` settings alone, every webhook is the one app's, whatever its ClientId, as before apps existed."""

    apps: dict[str, ExactApp]
    several: bool = False

    @property
    def names(self) -> list[str]:
        return sorted(self.apps)

    def get(self, name: str) -> ExactApp:
        try:
            return self.apps[name]
        except KeyError:
            raise UnknownApp(name, self.names) from None

    def by_client_id(self, client_id: str) -> ExactApp | None:
        wanted = normal_client_id(client_id)
        return next((a for a in self.apps.values() if a.client_id and normal_client_id(a.client_id) == wanted), None)


def apps_from_settings(settings: Settings) -> ExactApps:
    """Every app: EXACT_APPS's entries, and `default` from the EXACT_* settings unless EXACT_APPS is set and
    EXACT_CLIENT_ID is not. ValueError for `default` defined twice or one client id in two apps."""
    table = settings.exact_app_table
    legacy = _legacy(settings)
    if not table:
        return ExactApps({DEFAULT_APP: legacy})
    apps = {name: _entry(settings, name, entry) for name, entry in table.items()}
    if settings.exact_client_id:
        if DEFAULT_APP in apps:
            raise ValueError(f"EXACT_APPS defines {DEFAULT_APP!r} and EXACT_CLIENT_ID is set: keep one of them")
        apps[DEFAULT_APP] = legacy
    seen: dict[str, str] = {}
    for app in apps.values():
        assert app.client_id is not None
        other = seen.setdefault(normal_client_id(app.client_id), app.name)
        if other != app.name:
            raise ValueError(f"Exact apps {other!r} and {app.name!r} have the same client id")
    return ExactApps(apps, several=True)


def _legacy(settings: Settings) -> ExactApp:
    return ExactApp(
        DEFAULT_APP,
        settings.exact_base_url,
        settings.exact_client_id or None,
        _plain(settings.exact_client_secret),
        _plain(settings.exact_webhook_secret),
        settings.exact_redirect_uri,
    )


def _entry(settings: Settings, name: str, entry: ExactAppSettings) -> ExactApp:
    return ExactApp(
        name,
        entry.base_url.rstrip("/"),
        entry.client_id,
        entry.client_secret.get_secret_value(),
        _plain(entry.webhook_secret),
        entry.redirect_uri or settings.exact_redirect_uri,
    )


def _plain(value: SecretStr | str | None) -> str | None:
    # A plain str too: `model_copy(update=...)` does not validate, and tests hand secrets over as they are.
    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
    return plain or None
