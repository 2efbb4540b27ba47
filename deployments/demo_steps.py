"""The demo's business and its steps: seed it, connect it through Nomi's consent pages as a person
would, configure it, import ``examples/`` and publish (``deployments.demo`` runs them in order)."""

from __future__ import annotations

import importlib
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BUSINESS_SLUG = "bright-smile"
BUSINESS_NAME = "Bright Smile Dental Ltd"
ADMIN_EMAIL = "priya@brightsmile.example"
NOMI_LOGIN = ("owner@brightsmile.example", "brightsmile-owner")
APP_BLOCK = "nomi"
CONNECT_DEPLOYMENT = "connect-to-nomi/manual"
PUBLISH_ITEMS_DEPLOYMENT = "publish-items-to-nomi/manual"
# Merchants of the example expense claims: confirmed, so Nomi gets them as new suppliers. The new
# supplier of bs-0005 is left unconfirmed to show warn_new_supplier holding an item in review.
CONFIRMED_NEW_SUPPLIERS = ("Addison Lee", "Pret A Manger", "Trainline")


@dataclass
class Step:
    """One demo step and how it went."""

    name: str
    outcome: str = "ok"
    detail: str = ""


@dataclass
class Demo:
    """What the demo runs against."""

    home: Path
    database_url: str
    sandbox_url: str = ""
    callback_url: str = ""
    steps: list[Step] = field(default_factory=list)

    def say(self, text: str) -> None:
        """Tell the person running the demo."""
        print(text, flush=True)

    def record(self, name: str, outcome: str, detail: str = "") -> None:
        """Record and print a step's outcome."""
        self.steps.append(Step(name, outcome, detail))
        self.say(f"  [{outcome:>7}] {name}{': ' + detail if detail else ''}")


def load_flow(module: str) -> Any:
    """The flow ``flows.<module>.<module>``."""
    return getattr(importlib.import_module(f"flows.{module}"), module)


#: Seconds one demo run may take before the demo gives up on it.
RUN_TIMEOUT = 600


def start_deployment(deployment: str, params: dict[str, Any]) -> Any:
    """Create a run of a served deployment (``<flow>/<deployment>``) now; returns the flow run."""
    from prefect.deployments import run_deployment

    return run_deployment(deployment, parameters={"params": params}, timeout=0)


def wait_final(flow_run_id: Any, timeout: float = RUN_TIMEOUT) -> Any:
    """The flow run once its state is final (completed, failed, crashed, cancelled).

    Raises:
        TimeoutError: It was not final within ``timeout`` seconds.
    """
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state is not None and flow_run.state.is_final():
                return flow_run
            if time.monotonic() > deadline:
                state = flow_run.state.name if flow_run.state else "no state"
                raise TimeoutError(f"run {flow_run.name} still {state} after {timeout:.0f}s")
            time.sleep(0.5)


def run_deployment_step(demo: Demo, name: str, deployment: str, params: dict[str, Any]) -> bool:
    """Run a served deployment (the run shows under it in the UI); report the final state."""
    flow_run = wait_final(start_deployment(deployment, params).id)
    state = flow_run.state
    if state.is_completed():
        demo.record(name, "ok", f"{deployment}, run {flow_run.name}")
        return True
    demo.record(name, "failed", f"{deployment}: {state.name}: {state.message or ''}"[:300])
    return False


def reset_home(home: Path) -> None:
    """Remove the previous demo's connector and sandbox data (the Prefect home is kept)."""
    home.mkdir(parents=True, exist_ok=True)
    for name in ("connector.db", "sandbox.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (home / f"{name}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(home / "images", ignore_errors=True)


def seed(demo: Demo) -> None:
    """Migrate the connector database and add the business and its admin."""
    from connector.admin.businesses import add_business, connection_of
    from connector.admin.members import add_member
    from connector.admin.users import add_user
    from connector.store.db import make_engine, migrate, session

    engine = make_engine(demo.database_url)
    migrate(engine)
    with session(engine) as db:
        business = add_business(db, slug=BUSINESS_SLUG, name=BUSINESS_NAME)
        admin = add_user(db, email=ADMIN_EMAIL, name="Priya Shah")
        add_member(db, business=business, user=admin, role="admin")
        connection_of(db, business)
    engine.dispose()
    demo.record("seed business and admin", "ok", f"{BUSINESS_SLUG}, admin {ADMIN_EMAIL}")


def save_app_block(demo: Demo) -> None:
    """Save the NomiApp block pointing at the sandbox and the callback."""
    from pydantic import SecretStr

    from blocks.app import NomiApp

    NomiApp(
        client_id="nomi-connector-sandbox",
        client_secret=SecretStr("sandbox-client-secret"),
        authorize_url=f"{demo.sandbox_url}/oauth/authorize",
        token_url=f"{demo.sandbox_url}/oauth/token",
        revoke_url=f"{demo.sandbox_url}/oauth/revoke",
        api_base_url=demo.sandbox_url,
        redirect_uri=f"{demo.callback_url}/oauth/callback",
    ).save(APP_BLOCK, overwrite=True)
    demo.record("save NomiApp block", "ok", APP_BLOCK)


def authorize_link(since: datetime, timeout: float) -> str:
    """The newest ``authorize-<business>`` link artifact created after ``since``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[f"authorize-{BUSINESS_SLUG}"])
                ),
                sort=ArtifactSort.CREATED_DESC,
                limit=1,
            )
            if artifacts and artifacts[0].created and artifacts[0].created >= since:
                data = str(artifacts[0].data)
                found = re.search(r"\((https?://[^)\s]+)\)", data)
                return found.group(1) if found else data.strip()
            time.sleep(0.5)
    raise TimeoutError("the connect run showed no authorize link")


def connect(demo: Demo) -> bool:
    """Run connect-to-nomi/manual and answer Nomi's consent pages like a person with a browser."""
    import httpx

    from sandbox.browser import complete_consent
    from sandbox.seed import BRIGHT_SMILE, tenant_id

    params = {"business": BUSINESS_SLUG, "acting_user": ADMIN_EMAIL, "timeout_seconds": 300}
    since = datetime.now(UTC)
    flow_run = start_deployment(CONNECT_DEPLOYMENT, params)
    link = authorize_link(since, timeout=180)
    demo.say("  connect-to-nomi paused on its authorize link; signing in to Nomi as the owner")
    with httpx.Client(timeout=30) as browser:
        answer = complete_consent(
            browser,
            link,
            email=NOMI_LOGIN[0],
            password=NOMI_LOGIN[1],
            tenant_id=tenant_id(BRIGHT_SMILE),
        )
        page = browser.get(f"{demo.callback_url}/oauth/callback", params=answer)
    demo.say(f"  callback answered {page.status_code}: the run resumes")
    state = wait_final(flow_run.id).state
    if state.is_completed():
        demo.record("connect-to-nomi", "ok", f"{BUSINESS_SLUG} connected to {BRIGHT_SMILE}")
        return True
    demo.record("connect-to-nomi", "failed", f"{state.name}: {state.message}"[:300])
    return False


def configure(demo: Demo) -> None:
    """Settings, payment methods linked to bank accounts, and supplier/customer rules."""
    from sqlmodel import select

    from connector.admin.businesses import connection_of, get_business
    from connector.admin.connection_settings import set_settings
    from connector.admin.contact_rules import add_rule
    from connector.admin.payment_methods import add_payment_method
    from connector.admin.users import get_user
    from connector.store.db import make_engine, session
    from connector.store.models import BankAccount, Category, TaxRate

    engine = make_engine(demo.database_url)
    with session(engine) as db:
        business = get_business(db, BUSINESS_SLUG)
        connection = connection_of(db, business)
        where = {"connection_id": connection.id}
        codes = {c.code: c.nomi_id for c in db.exec(select(Category).filter_by(**where))}
        taxes = {t.code: t.nomi_id for t in db.exec(select(TaxRate).filter_by(**where))}
        banks = {b.name: b.nomi_id for b in db.exec(select(BankAccount).filter_by(**where))}
        admin = get_user(db, ADMIN_EMAIL)
        card = add_payment_method(
            db,
            business=business,
            actor=admin,
            name="Company credit card",
            bank_account_nomi_id=banks.get("Company Credit Card"),
        )
        current = add_payment_method(
            db,
            business=business,
            actor=admin,
            name="Business current account",
            bank_account_nomi_id=banks.get("Business Current Account"),
        )
        changes = {"auto_publish": "true", "warn_new_supplier": "true", "use_tax_list": "true"}
        for setting, code in [
            ("default_tax_costs", "STD20"),
            ("default_zero_tax_code_costs", "ZERO"),
            ("default_tax_sales", "STD20S"),
            ("default_zero_tax_code_sales", "EXEMPT"),
        ]:
            if code in taxes:
                changes[setting] = taxes[code]
        set_settings(db, business=business, actor=admin, changes=changes)
        rules: list[tuple[str, str, str, dict[str, Any]]] = [
            ("supplier", "Henry Schein Minerva", "310", {}),
            ("supplier", "Dental Directory", "310", {"payment_method_id": card.id}),
            ("supplier", "BT Business", "489", {}),
            ("supplier", "British Gas Business", "445", {}),
            ("supplier", "Royal Mail", "453", {}),
            ("supplier", "Addison Lee", "493", {}),
            ("supplier", "Pret A Manger", "420", {}),
            ("supplier", "Trainline", "493", {}),
            ("customer", "NHS England", "200", {}),
            ("customer", "Denplan Ltd", "200", {}),
            ("customer", "Private patients", "200", {"payment_method_id": current.id}),
        ]
        made = 0
        for kind, name, code, extra in rules:
            if code in codes:
                add_rule(
                    db,
                    business=business,
                    actor=admin,
                    kind=kind,
                    name=name,
                    category_nomi_id=codes[code],
                    **extra,
                )
                made += 1
    engine.dispose()
    detail = f"{len(changes)} settings, 2 payment methods, {made} rules"
    if not codes:
        detail += " (no synced categories: rules skipped)"
    demo.record("configure settings, payment methods, rules", "ok", detail)


def import_examples(demo: Demo) -> None:
    """Import ``examples/items.csv`` and ``examples/items.jsonl``."""
    from connector.admin.businesses import get_business
    from connector.items.intake import import_items
    from connector.store.db import make_engine, session

    engine = make_engine(demo.database_url)
    imported, refused = 0, 0
    with session(engine) as db:
        business_id = get_business(db, BUSINESS_SLUG).id
    for name in ("items.csv", "items.jsonl"):
        with session(engine) as db:
            report = import_items(
                db,
                REPO_ROOT / "examples" / name,
                business_id=business_id,
                actor_email=ADMIN_EMAIL,
                images_dir=demo.home / "images",
            )
            imported += len(report.imported)
            refused += len(report.errors)
    engine.dispose()
    demo.record(
        "import examples/items.csv and items.jsonl",
        "ok",
        f"{imported} items, {refused} refused rows",
    )


def publish_confirming_new_suppliers(demo: Demo) -> bool:
    """Run publish-items-to-nomi for the expense claims, confirming their new suppliers."""
    from sqlmodel import col, select

    from connector.admin.businesses import get_business
    from connector.store.db import make_engine, session
    from connector.store.models import Item

    engine = make_engine(demo.database_url)
    with session(engine) as db:
        business = get_business(db, BUSINESS_SLUG)
        external_ids = list(
            db.exec(
                select(Item.external_id).where(
                    Item.business_id == business.id,
                    col(Item.contact_name).in_(CONFIRMED_NEW_SUPPLIERS),
                )
            )
        )
    engine.dispose()
    params = {
        "business": BUSINESS_SLUG,
        "external_ids": external_ids,
        "acting_user": ADMIN_EMAIL,
        "confirm_new_contacts": True,
    }
    name = f"publish-items-to-nomi (confirming {', '.join(CONFIRMED_NEW_SUPPLIERS)})"
    return run_deployment_step(demo, name, PUBLISH_ITEMS_DEPLOYMENT, params)
