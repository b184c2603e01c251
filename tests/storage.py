"""Creates the stack's resources in moto from the synthesized template (the one source)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def template() -> dict[str, Any]:
    from tt_local.template import load_template

    return load_template()


def create_storage() -> dict[str, str]:
    from tt_local.provision import provision

    return provision(template(), boto3.session.Session())
