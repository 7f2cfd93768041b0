"""Who an end user is, and which tenant a caller may act for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Q

from accounts.auth import UserPrincipal
from billing_site.errors import TenantForbidden

if TYPE_CHECKING:
    from accounts.models import Account


@dataclass(frozen=True)
class Identity:
    """The guide's identity block; (tenant_id, oauth_provider, external_id) is unique."""

    oauth_provider: str
    external_id: str
    tenant_id: str = ""
    wa_id: str = ""
    email: str = ""

    def lookup(self, prefix: str = "") -> Q:
        """A filter on Account (or, with prefix="account__", on a model pointing to one)."""
        return Q(
            **{
                f"{prefix}tenant_id": self.tenant_id,
                f"{prefix}oauth_provider": self.oauth_provider,
                f"{prefix}external_id": self.external_id,
            }
        )


def identity_of(account: Account) -> Identity:
    """The identity of an existing account."""
    return Identity(oauth_provider=account.oauth_provider, external_id=account.external_id, tenant_id=account.tenant_id)


def resolve_tenant(*, key_tenant_id: str, requested_tenant_id: str | None) -> str:
    """A tenant-bound key acts only for its tenant; an unbound key for any tenant it names."""
    requested = requested_tenant_id or ""
    if key_tenant_id:
        if requested and requested != key_tenant_id:
            raise TenantForbidden("This API key may not act for that tenant.")
        return key_tenant_id
    return requested


def identity_from(data: dict[str, Any], *, key_tenant_id: str) -> Identity:
    """Build an Identity from validated input, applying the caller's tenant binding."""
    return Identity(
        oauth_provider=data["oauth_provider"],
        external_id=data["external_id"],
        tenant_id=resolve_tenant(key_tenant_id=key_tenant_id, requested_tenant_id=data.get("tenant_id")),
        wa_id=data.get("wa_id") or "",
        email=data.get("customer_email") or "",
    )


def user_owns(account: Account, *, caller: object) -> bool:
    """False only for a user token and an account that is not its own (looked up by id)."""
    if not isinstance(caller, UserPrincipal):
        return True  # API keys: the tenant rules of the lookup apply
    own = (account.tenant_id, account.oauth_provider, account.external_id)
    return own == ("", caller.provider, caller.sub)
