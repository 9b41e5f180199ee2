"""Who is calling: the identity a token or credentials resolve to."""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM_COMPANY = "__system__"
"""Company of records that belong to no tenant (credentials, revoked sessions); never a user's company."""

ROLES = ("system", "root", "admin", "superuser", "user", "annotator", "guest")


@dataclass(frozen=True)
class Identity:
    user: str
    company: str
    role: str = "user"
    user_name: str = ""
    company_name: str = ""
    session_id: str = ""
    credential: str = ""
    """What this authentication descends from and dies with: ``key:<access key>`` (a key pair),
    ``api:<digest>`` (an API token), or ``""`` (tokens minted by the CLI or internally)."""

    def claims(self) -> dict[str, str]:
        return {
            k: v
            for k, v in {
                "user": self.user,
                "company": self.company,
                "role": self.role,
                "user_name": self.user_name,
                "company_name": self.company_name,
            }.items()
            if v
        }
