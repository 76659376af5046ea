"""The synthetic organisation: determinism, exact schemas, planted scenarios, decoys."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.synthetic import GenerationSummary, generate
from benchmarks.synthetic.org import Calendar
from benchmarks.synthetic.scenarios import training_days
from benchmarks.synthetic.tables import Table, Vocab, cert_ids

USERS, DAYS, SEED = 40, 60, 7
START = date(2010, 1, 4)
CERT_FILES = ("logon.csv", "device.csv", "file.csv", "email.csv", "http.csv")
HEADERS = {
    "logon.csv": "id,date,user,pc,activity",
    "device.csv": "id,date,user,pc,file_tree,activity",
    "file.csv": "id,date,user,pc,filename,activity,to_removable_media,from_removable_media,content",
    "email.csv": "id,date,user,pc,to,cc,bcc,from,activity,size,attachments,content",
    "http.csv": "id,date,user,pc,url,activity,content",
    "psychometric.csv": "employee_name,user_id,O,C,E,A,N",
    "ground_truth.csv": "entity,day,scenario,description",
    "decoys.csv": "entity,day,kind,description",
}
LDAP_HEADER = (
    "employee_name,user_id,email,role,projects,business_unit,functional_unit,department,team,"
    "supervisor"
)
AUTH_COLUMNS = [
    "time",
    "src_user",
    "dst_user",
    "src_computer",
    "dst_computer",
    "auth_type",
    "logon_type",
    "auth_orientation",
    "success",
]


@pytest.fixture(scope="module")
def org_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    out = tmp_path_factory.mktemp("org")
    return out, generate(out, users=USERS, days=DAYS, seed=SEED)


def _read(out: Path, name: str) -> pl.DataFrame:
    frame = pl.read_csv(out / name, infer_schema=False)
    if "date" in frame.columns and name != "ground_truth.csv":
        frame = frame.with_columns(
            pl.col("date").str.strptime(pl.Datetime, "%m/%d/%Y %H:%M:%S", strict=True)
        )
    return frame


def _auth(out: Path) -> pl.DataFrame:
    return pl.read_csv(
        out / "auth.txt", has_header=False, new_columns=AUTH_COLUMNS, infer_schema=False
    ).with_columns(pl.col("time").cast(pl.Int64))


def _truth(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "ground_truth.csv", infer_schema=False).with_columns(
        pl.col("day").str.to_date()
    )


def _day_index(frame: pl.DataFrame) -> pl.Expr:
    return (pl.col("date").dt.date() - pl.lit(START)).dt.total_days()


# --- determinism -----------------------------------------------------------------------


def _all_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    generate(tmp_path / "a", users=40, days=30, seed=11)
    generate(tmp_path / "b", users=40, days=30, seed=11)
    generate(tmp_path / "c", users=40, days=30, seed=12)
    first, second, other = (_all_bytes(tmp_path / x) for x in "abc")
    # 6 logs, psychometric, truth, decoys, manifest, 2 LDAP months, and the CERT answer key:
    # insiders.csv plus one details file per planted account (6), and LANL redteam.txt.
    assert len(first) == 20
    assert "answers/insiders.csv" in first
    assert first == second
    for name in ("logon.csv", "http.csv", "auth.txt", "ground_truth.csv"):
        assert first[name] != other[name], name


# --- schemas ---------------------------------------------------------------------------


def test_every_file_has_its_exact_header(org_dir: tuple[Path, GenerationSummary]) -> None:
    out, _ = org_dir
    for name, header in HEADERS.items():
        assert (out / name).read_text().splitlines()[0] == header, name
    for snapshot in (out / "LDAP").iterdir():
        assert snapshot.read_text().splitlines()[0] == LDAP_HEADER
    # auth.txt has no header: its first field is already an integer time.
    first = (out / "auth.txt").read_text().splitlines()[0].split(",")
    assert len(first) == 9 and first[0].isdigit()


def test_cert_rows_parse_are_sorted_and_inside_the_period(
    org_dir: tuple[Path, GenerationSummary],
) -> None:
    out, summary = org_dir
    for name in CERT_FILES:
        frame = _read(out, name)
        assert frame.height == summary.row_counts[name] > 0
        dates = frame["date"]
        assert dates.is_sorted(), name
        assert dates.min() >= datetime(2010, 1, 4)  # type: ignore[operator]
        assert dates.max() < datetime(2010, 3, 5)  # type: ignore[operator]
        assert frame["id"].n_unique() == frame.height
        assert frame["id"].str.contains(r"^\{[0-9A-Z]{4}-[0-9A-Z]{8}-[0-9A-Z]{8}\}$").all()
    activities = {
        "logon.csv": {"Logon", "Logoff"},
        "device.csv": {"Connect", "Disconnect"},
        "file.csv": {"File Open", "File Write", "File Copy", "File Delete"},
        "email.csv": {"Send", "View"},
        "http.csv": {"WWW Visit", "WWW Download", "WWW Upload"},
    }
    for name, allowed in activities.items():
        assert set(_read(out, name)["activity"].unique().to_list()) == allowed, name
    files = _read(out, "file.csv")
    assert set(files["to_removable_media"].unique()) == {"True", "False"}
    device = _read(out, "device.csv")
    connects = device.filter(pl.col("activity") == "Connect")
    assert connects["file_tree"].str.starts_with("R:\\").all()
    assert device.filter(pl.col("activity") == "Disconnect")["file_tree"].is_null().all()


def test_auth_is_lanl_shaped_and_sorted(org_dir: tuple[Path, GenerationSummary]) -> None:
    out, summary = org_dir
    auth = _auth(out)
    assert auth.height == summary.row_counts["auth.txt"]
    assert auth["time"].is_sorted() and auth["time"].min() >= 0  # type: ignore[operator]
    assert auth["time"].max() < DAYS * 86400  # type: ignore[operator]
    assert auth["src_user"].str.contains(r"^(?:[A-Z]{3}\d{4}|C\d+\$)@DOM1$").all()
    assert auth["src_computer"].str.contains(r"^C\d+$").all()
    assert set(auth["auth_orientation"].unique()) <= {"LogOn", "LogOff", "TGS", "TGT"}
    assert set(auth["success"].unique()) == {"Success", "Fail"}
    assert set(auth["auth_type"].unique()) <= {"Kerberos", "NTLM", "Negotiate", "?"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["lanl_epoch"] == "2010-01-04T00:00:00Z"


def test_ldap_has_one_snapshot_per_month_and_leavers_vanish(
    org_dir: tuple[Path, GenerationSummary],
) -> None:
    out, summary = org_dir
    snapshots = sorted(p.name for p in (out / "LDAP").iterdir())
    assert snapshots == ["2010-01.csv", "2010-02.csv", "2010-03.csv"]
    january = _read(out, "LDAP/2010-01.csv")
    assert january["user_id"].n_unique() == january.height
    # Every supervisor is the employee_name of someone in the same snapshot.
    assert set(january["supervisor"].drop_nulls()) <= set(january["employee_name"])
    logons = _read(out, "logon.csv").with_columns(month=pl.col("date").dt.strftime("%Y-%m"))
    for scenario in ("1", "2"):
        for user in summary.planted[scenario]:
            last_month = logons.filter(pl.col("user") == user)["month"].max()
            assert isinstance(last_month, str)
            for snapshot in snapshots:
                members = set(_read(out, f"LDAP/{snapshot}")["user_id"])
                assert (user in members) == (snapshot[:7] <= last_month), (user, snapshot)


def test_summary_and_manifest_agree_with_files(org_dir: tuple[Path, GenerationSummary]) -> None:
    out, summary = org_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == SEED and manifest["users"] == USERS and manifest["days"] == DAYS
    assert manifest["start"] == "2010-01-04"
    assert manifest["row_counts"] == summary.row_counts
    for name, count in summary.row_counts.items():
        lines = (out / name).read_text().count("\n")
        assert lines == count + (name != "auth.txt"), name
    assert manifest["planted"] == summary.planted
    # http dominates, as in the real CERT data.
    assert summary.row_counts["http.csv"] > 0.6 * summary.total_rows


# --- ground truth ----------------------------------------------------------------------


def test_every_scenario_is_planted_after_the_training_third(
    org_dir: tuple[Path, GenerationSummary],
) -> None:
    out, summary = org_dir
    truth = _truth(out).with_columns(index=(pl.col("day") - pl.lit(START)).dt.total_days())
    assert set(truth["scenario"]) == {"1", "2", "3", "4", "5"}
    assert truth["index"].min() >= training_days(DAYS)  # type: ignore[operator]
    assert truth["index"].max() < DAYS  # type: ignore[operator]
    for scenario, users in summary.planted.items():
        labelled = set(truth.filter(pl.col("scenario") == scenario)["entity"])
        assert labelled == set(users), scenario
    # Scenarios sit on different users (scenario 3 adds the abused supervisor).
    everyone = [u for users in summary.planted.values() for u in users]
    assert len(everyone) == len(set(everyone)) == 6


def _truth_days(out: Path, scenario: str) -> tuple[str, set[date]]:
    truth = _truth(out).filter(pl.col("scenario") == scenario)
    user = truth["entity"][0]
    return user, set(truth.filter(pl.col("entity") == user)["day"])


def test_scenario_1_night_logons_usb_and_leak_upload_then_gone(
    org_dir: tuple[Path, GenerationSummary],
) -> None:
    out, _ = org_dir
    user, days = _truth_days(out, "1")
    logons = _read(out, "logon.csv").filter(pl.col("user") == user)
    night = logons.filter((pl.col("activity") == "Logon") & (pl.col("date").dt.hour() < 5))
    assert set(night["date"].dt.date()) <= days and night.height >= 2
    training = logons.filter(_day_index(logons) < training_days(DAYS))
    assert training.height > 10
    assert training.filter(pl.col("date").dt.hour() < 5).height == 0
    copies = _read(out, "file.csv").filter(
        (pl.col("user") == user) & (pl.col("to_removable_media") == "True")
    )
    assert copies.height >= 8 and set(copies["date"].dt.date()) <= days
    uploads = _read(out, "http.csv").filter(
        (pl.col("user") == user) & (pl.col("activity") == "WWW Upload")
    )
    leaks = uploads.filter(pl.col("url").str.contains("wikileaks|cryptome|leaksource"))
    assert leaks.height >= 2 and set(leaks["date"].dt.date()) <= days
    # Gone from every log two days after the last malicious day.
    last = max(days)
    for name in CERT_FILES:
        frame = _read(out, name).filter(pl.col("user") == user)
        assert (frame["date"].dt.date() <= date.fromordinal(last.toordinal() + 2)).all()


def test_scenario_2_job_search_then_growing_usb_copies(
    org_dir: tuple[Path, GenerationSummary],
) -> None:
    out, _ = org_dir
    user, days = _truth_days(out, "2")
    http = _read(out, "http.csv").filter(pl.col("user") == user)
    jobs = http.filter(pl.col("url").str.contains("jobs/search"))
    assert jobs.height >= 10 and set(jobs["date"].dt.date()) <= days
    copies = _read(out, "file.csv").filter(
        (pl.col("user") == user) & (pl.col("to_removable_media") == "True")
    )
    per_day = copies.group_by(pl.col("date").dt.date().alias("day")).len().sort("day")
    planted = per_day.filter(pl.col("day").is_in(list(days)))
    assert planted.height >= 2
    assert planted["len"].min() >= 15  # type: ignore[operator]
    assert planted["len"][-1] > planted["len"][0]
    usual = per_day.filter(~pl.col("day").is_in(list(days)))["len"]
    assert usual.len() == 0 or usual.max() < planted["len"].max()  # type: ignore[operator]


def test_scenario_3_keylogger_then_mass_email_from_supervisor_pc(
    org_dir: tuple[Path, GenerationSummary],
) -> None:
    out, summary = org_dir
    admin, boss = summary.planted["3"]
    truth = _truth(out).filter(pl.col("scenario") == "3")
    admin_days = set(truth.filter(pl.col("entity") == admin)["day"])
    boss_days = set(truth.filter(pl.col("entity") == boss)["day"])
    downloads = _read(out, "http.csv").filter(
        (pl.col("user") == admin)
        & (pl.col("activity") == "WWW Download")
        & pl.col("url").str.contains("keylogger")
    )
    assert downloads.height >= 1 and set(downloads["date"].dt.date()) <= admin_days
    logons = _read(out, "logon.csv")
    training = logons.filter(_day_index(logons) < training_days(DAYS))
    boss_pc = training.filter(pl.col("user") == boss)["pc"].mode()[0]
    at_boss_pc = logons.filter((pl.col("user") == admin) & (pl.col("pc") == boss_pc))
    assert at_boss_pc.height >= 1 and set(at_boss_pc["date"].dt.date()) <= admin_days
    assert training.filter((pl.col("user") == admin) & (pl.col("pc") == boss_pc)).height == 0
    emails = _read(out, "email.csv").filter(pl.col("user") == boss)
    mass = emails.filter(pl.col("to").str.count_matches(";") >= 29)
    assert mass.height == 1
    assert mass["pc"][0] == boss_pc and set(mass["date"].dt.date()) == boss_days
    ldap = _read(out, "LDAP/2010-01.csv")
    boss_name = ldap.filter(pl.col("user_id") == boss)["employee_name"][0]
    assert ldap.filter(pl.col("user_id") == admin)["supervisor"][0] == boss_name


def test_scenario_4_fans_out_to_new_hosts_at_night(
    org_dir: tuple[Path, GenerationSummary],
) -> None:
    out, _ = org_dir
    user, days = _truth_days(out, "4")
    auth = _auth(out).filter(pl.col("src_user") == f"{user}@DOM1")
    auth = auth.with_columns(day=pl.col("time") // 86400, hour=(pl.col("time") % 86400) // 3600)
    seen = set(auth.filter(pl.col("day") < training_days(DAYS))["dst_computer"])
    day_index = {(d - START).days for d in days}
    attack = auth.filter(pl.col("day").is_in(list(day_index)))
    new = attack.filter(~pl.col("dst_computer").is_in(list(seen)))
    assert new["dst_computer"].n_unique() >= 15
    assert new.filter((pl.col("hour") >= 7) & (pl.col("hour") < 20)).height == 0
    assert new.filter(pl.col("success") == "Fail").height >= 1
    fan_out = new.group_by("day").agg(pl.col("dst_computer").n_unique()).sort("day")
    assert fan_out["dst_computer"][-1] > fan_out["dst_computer"][0]


def test_scenario_5_beacons_every_five_minutes_to_a_private_domain(
    org_dir: tuple[Path, GenerationSummary],
) -> None:
    out, _ = org_dir
    user, days = _truth_days(out, "5")
    http = _read(out, "http.csv").with_columns(
        domain=pl.col("url").str.extract(r"^http://([^/]+)/")
    )
    private = (
        http.group_by("domain")
        .agg(pl.col("user").n_unique().alias("users"), pl.col("user").first(), pl.len())
        .filter((pl.col("users") == 1) & (pl.col("user") == user))
        .sort("len", descending=True)
    )
    beacon_domain = private["domain"][0]
    calls = http.filter(pl.col("domain") == beacon_domain)
    assert set(calls["date"].dt.date()) == days
    first_day = calls.filter(pl.col("date").dt.date() == min(days))
    gaps = np.diff(first_day["date"].dt.epoch("s").to_numpy())
    assert len(gaps) >= 20 and np.all(np.abs(gaps - 300) <= 6)


def test_decoys_cover_several_kinds(org_dir: tuple[Path, GenerationSummary]) -> None:
    out, summary = org_dir
    decoys = pl.read_csv(out / "decoys.csv", infer_schema=False)
    assert decoys.height == summary.decoy_rows
    kinds = set(decoys["kind"])
    assert len(kinds) >= 6
    assert {"laptop_swap", "new_hire", "maintenance_night", "usb_presentation"} <= kinds
    planted = {u for users in summary.planted.values() for u in users}
    assert not planted & set(decoys["entity"].filter(decoys["kind"] != "department_new_site"))


def test_new_hire_decoy_has_no_activity_before_hire(
    org_dir: tuple[Path, GenerationSummary],
) -> None:
    out, _ = org_dir
    decoys = pl.read_csv(out / "decoys.csv", infer_schema=False).filter(
        pl.col("kind") == "new_hire"
    )
    logons = _read(out, "logon.csv")
    for user in set(decoys["entity"]):
        first_day = min(decoys.filter(pl.col("entity") == user)["day"].str.to_date())
        theirs = logons.filter(pl.col("user") == user)
        assert theirs.height > 0 and theirs["date"].min().date() == first_day  # type: ignore[union-attr]


# --- building blocks -------------------------------------------------------------------


def test_cert_ids_are_unique_and_well_formed() -> None:
    ids = cert_ids(200_000, salt=3)
    assert ids.n_unique() == 200_000
    assert ids.str.contains(r"^\{[0-9A-Z]{4}-[0-9A-Z]{8}-[0-9A-Z]{8}\}$").all()
    assert set(ids.head(1000)).isdisjoint(set(cert_ids(1000, salt=4)))


def test_table_sorts_stably_drops_out_of_period_rows_and_decodes_nulls() -> None:
    names = Vocab(["a", "b"])
    table = Table({"who": names})
    table.add(np.array([5, 1, 5, 99, -1]), who=np.array([0, 1, -1, 0, 0]))
    frame = table.frame(horizon=50)
    assert frame["ts"].to_list() == [1, 5, 5]
    assert frame["who"].to_list() == ["b", "a", None]


def test_calendar_marks_weekends_and_us_holidays() -> None:
    cal = Calendar.build(date(2010, 1, 4), 45)
    # MLK day 2010-01-18 and Presidents' day 2010-02-15 are Monday holidays.
    assert not cal.workday[14] and cal.holiday[14]
    assert not cal.workday[42] and cal.holiday[42]
    assert int(cal.workday.sum()) == 45 // 7 * 5 + 3 - 2


def test_rejects_organisations_too_small_to_plant(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="users"):
        generate(tmp_path, users=10, days=30, seed=1)
    with pytest.raises(ValueError, match="days"):
        generate(tmp_path, users=40, days=7, seed=1)


@pytest.mark.slow
def test_demo_size_organisation_has_realistic_volumes(tmp_path: Path) -> None:
    summary = generate(tmp_path, users=300, days=120, seed=7)
    counts = summary.row_counts
    assert 1_500_000 < counts["http.csv"] < 6_000_000
    assert counts["http.csv"] > counts["email.csv"] > counts["file.csv"] > counts["device.csv"]
    assert [len(summary.planted[str(s)]) for s in range(1, 6)] == [1, 1, 2, 1, 1]
    decoys = pl.read_csv(tmp_path / "decoys.csv", infer_schema=False)
    assert decoys["kind"].n_unique() == 8
