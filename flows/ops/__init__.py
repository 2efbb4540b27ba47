"""Ops flows: one per action the ``nomi-connector`` command has, each a form in the Prefect UI.

Every form names things as people do (the business by slug, items by external id, categories,
tax rates and bank accounts by code or name) and takes the acting user's email; the flows call
the same library functions as the CLI through ``tasks.ops.actions``. The words the forms share
are here.
"""

from __future__ import annotations

#: The description of every form's ``business`` field.
BUSINESS_HELP = "Slug of the business, as 'nomi-connector business list' shows it (bright-smile)."
#: The description of the ``acting_user`` field of forms only admins and accountants may use.
ADMIN_ACTOR_HELP = (
    "Email of the person acting: an admin or accountant of the business (the change is audited)."
)
#: The description of the ``acting_user`` field of forms any member may use.
MEMBER_ACTOR_HELP = "Email of the person acting: any member of the business (audited)."
