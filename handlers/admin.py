"""admin handlers (see issue 3)."""

from handlers.core import Context


def accept_invitation(ctx: Context, token: str) -> None:
    """Bind whoever opens an invitation to its role."""
    ctx.say(ctx.t("This invitation is not valid. Please ask an admin for a new one."))
