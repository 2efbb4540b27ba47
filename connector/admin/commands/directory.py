"""``business``, ``user`` and ``member`` commands: who exists and who belongs where."""

from __future__ import annotations

import typer

from connector.admin.businesses import add_business, get_business, list_businesses
from connector.admin.commands.base import database, echo, table
from connector.admin.members import add_member
from connector.admin.users import add_user, get_actor, get_user
from connector.rules.vocabulary import Role

business_app = typer.Typer(help="Businesses.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
member_app = typer.Typer(
    help="Who belongs to which business, with which role.", no_args_is_help=True
)


@business_app.command("add")
def business_add(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="Short name: 2 to 63 lowercase letters, digits, '-'."),
    name: str = typer.Option(..., "--name", help="The business's name as people write it."),
) -> None:
    """Add a business."""
    with database(ctx, write=True) as db:
        business = add_business(db, slug=slug, name=name)
        echo(f"added business {business.slug} ({business.id})")


@business_app.command("list")
def business_list(ctx: typer.Context) -> None:
    """List businesses."""
    with database(ctx, write=False) as db:
        rows = [(b.slug, b.name, b.id) for b in list_businesses(db)]
        table(("slug", "name", "id"), rows)


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The user's email (their sign-in; stored lowercase)."),
    name: str = typer.Option(..., "--name", help="The user's name."),
) -> None:
    """Add a user."""
    with database(ctx, write=True) as db:
        user = add_user(db, email=email, name=name)
        echo(f"added user {user.email} ({user.id})")


@member_app.command("add")
def member_add(
    ctx: typer.Context,
    business: str = typer.Option(..., "--business", help="Business slug."),
    user: str = typer.Option(..., "--user", help="User email."),
    role: Role = typer.Option(
        ...,
        "--role",
        case_sensitive=False,
        help="admin and accountant manage the business; standard imports, edits and publishes.",
    ),
    actor: str | None = typer.Option(
        None,
        "--actor",
        help="Email of an admin or accountant of the business (not needed for the first admin "
        "of a new business).",
    ),
) -> None:
    """Give a user a role in a business (an admin or accountant of it must be the actor)."""
    with database(ctx, write=True) as db:
        target = get_business(db, business)
        member = add_member(
            db,
            business=target,
            user=get_user(db, user),
            role=role.value,
            actor=get_actor(db, actor, business=target, action="members.add") if actor else None,
        )
        echo(f"{user} is {member.role} of {business}")
