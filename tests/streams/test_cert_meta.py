"""CERT psychometric scores and LDAP snapshots."""

from __future__ import annotations

from datetime import date

import polars as pl

from streams import ldap_directory, read_ldap, read_psychometric

from .conftest import FIXTURES


def test_psychometric() -> None:
    frame = read_psychometric(FIXTURES / "cert_r62" / "psychometric.csv")
    assert frame.columns == ["user", "O", "C", "E", "A", "N"]
    assert frame.rows() == [("HPH0075", 40, 39, 36, 19, 40), ("ACM2278", 26, 22, 17, 39, 32)]


def test_ldap_r62_snapshots_and_directory() -> None:
    ldap = read_ldap(FIXTURES / "cert_r62" / "LDAP")
    assert ldap.columns == [
        "user",
        "name",
        "email",
        "role",
        "business_unit",
        "functional_unit",
        "department",
        "team",
        "supervisor",
        "month",
    ]
    assert ldap.schema["month"] == pl.Date
    assert ldap.select("user", "role", "month").rows() == [
        ("HPH0075", "Salesman", date(2010, 1, 1)),
        ("ACM2278", "ITAdmin", date(2010, 1, 1)),
        ("HPH0075", "SalesManager", date(2010, 2, 1)),
    ]
    directory = ldap_directory(ldap)
    assert directory.select(
        "user", "role", "supervisor", "first_month", "last_month", "left"
    ).rows() == [
        ("ACM2278", "ITAdmin", "Hedda Fleur Duke", date(2010, 1, 1), date(2010, 1, 1), True),
        ("HPH0075", "SalesManager", "Ora Lane", date(2010, 1, 1), date(2010, 2, 1), False),
    ]


def test_ldap_r42_layout() -> None:
    ldap = read_ldap(FIXTURES / "cert_r42" / "LDAP")
    assert ldap.row(0, named=True) == {
        "user": "HPH0075",
        "name": "Calvin Edward Rios",
        "email": "Calvin.Edward.Rios@dtaa.com",
        "role": "Salesman",
        "business_unit": "1",
        "functional_unit": "5 - SalesAndMarketing",
        "department": "2 - Sales",
        "team": "5 - Sales",
        "supervisor": "Dawn Kaye Carey",
        "month": date(2009, 12, 1),
    }
