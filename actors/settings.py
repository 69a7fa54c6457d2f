"""Everything the engine needs to start, gathered from each actor's own settings class."""

from __future__ import annotations

import attrs

from actors.cache.settings import CacheSettings
from actors.ledger.settings import LedgerSettings
from actors.policy.settings import RouterSettings
from actors.providers.retry import RetrySettings
from actors.providers.settings import ProviderSettings
from actors.runtime.breaker import BreakerSettings
from actors.telemetry.settings import TelemetrySettings


@attrs.frozen
class EngineSettings:
    router: RouterSettings
    providers: tuple[ProviderSettings, ...]
    ledger: LedgerSettings
    cache: CacheSettings
    telemetry: TelemetrySettings
    breaker: BreakerSettings = BreakerSettings()
    retry: RetrySettings = RetrySettings()
    batch_concurrency: int = 64
    request_deadline_s: float = 180.0
    """Default bound on one request's whole workflow; `Request.deadline_s` overrides it."""
    rng_seed: int | None = None

    def provider(self, name: str) -> ProviderSettings:
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)
