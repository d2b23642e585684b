"""Which secret verifies a webhook: with several Exact apps, the one of the app its `Content.ClientId` names."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from connections.apps import apps_from_settings, normal_client_id
from runtime.settings import MissingSetting, Settings

__all__ = ["WebhookSecrets", "client_id_of"]


@dataclass(frozen=True)
class WebhookSecrets:
    """One secret for every webhook (the EXACT_* settings alone), or a secret per app's client id (EXACT_APPS).

    secrets = WebhookSecrets.from_settings(settings)   # MissingSetting for an app without a webhook secret
    secrets.secret_for(content_bytes)                   # None: the ClientId is no app's, so nothing can verify it
    """

    only: str | None = field(default=None, repr=False)
    by_client_id: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSecrets:
        apps = apps_from_settings(settings)
        if not apps.several:
            return cls(only=settings.secret("exact_webhook_secret"))
        missing = [app.setting("webhook_secret") for app in apps.apps.values() if not app.webhook_secret]
        if missing:
            raise MissingSetting(*missing)
        return cls(by_client_id={normal_client_id(str(a.client_id)): str(a.webhook_secret) for a in apps.apps.values()})

    def secret_for(self, content: bytes) -> str | None:
        """The secret to check these (not yet verified) `Content` bytes with."""
        if self.only is not None:
            return self.only  # one app: no ClientId to read, the request path stays as it was
        client_id = client_id_of(content)
        return self.by_client_id.get(normal_client_id(client_id)) if client_id else None


def client_id_of(content: bytes) -> str | None:
    """`ClientId` of unverified `Content` bytes; it only picks a key, and the HashCode under that key decides."""
    try:
        parsed = json.loads(content)
    except ValueError:
        return None
    value = parsed.get("ClientId") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) and value else None
