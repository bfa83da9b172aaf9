"""``plabdata tokens verify TOKEN``: check a user token as a plugin's server would — handy
with ``plabdata emulator token`` when testing a plugin server with curl."""

from __future__ import annotations

import click

from plabdata.cli._base import errors_to_exit, main


@main.group()
def tokens() -> None:
    """Verify PluginLab user tokens (PS256 JWTs) against the cert URL."""


@tokens.command("verify")
@click.argument("token")
@click.option(
    "--plugin-id",
    envvar="PLUGINLAB_PLUGIN_ID",
    required=True,
    help="The plugin whose tokens to accept (PLUGINLAB_PLUGIN_ID): the audience.",
)
@click.option(
    "--cert-url",
    envvar="PLUGINLAB_CERT_URL",
    help="Where the signing keys are (PLUGINLAB_CERT_URL; default PluginLab's).",
)
@click.option(
    "--issuer",
    envvar="PLUGINLAB_ISSUER",
    help="The iss a token must carry (PLUGINLAB_ISSUER; default https://auth.pluginlab.ai).",
)
@errors_to_exit
def verify(token: str, plugin_id: str, cert_url: str | None, issuer: str | None) -> None:
    """Verify TOKEN (a JWT, or 'Bearer <JWT>') and print its claims; exit 1 if it does not
    verify. No admin secret is needed."""
    from plabdata.auth._tokens import TokenVerifier
    from plabdata.wire import DEFAULT_CERT_URL

    with TokenVerifier(
        cert_url=cert_url or DEFAULT_CERT_URL,
        audience=f"plugin:{plugin_id}:admin",
        issuer=issuer or None,
    ) as verifier:
        payload = (
            verifier.verify_bearer(token)
            if token.lower().startswith("bearer ")
            else verifier.verify(token)
        )
    user = payload.user
    click.echo(f"valid token for member {user.id} ({user.email})")
    click.echo(f"  plan_id: {user.plan_id}  price_id: {user.price_id}")
    click.echo(f"  issuer: {payload.iss}  audience: {payload.aud}  expires: {payload.exp}")
