"""Loaders and privacy: columns outside the contract never reach the workspace, forgotten customers are
skipped on the next load, customer ids can be replaced by keyed pseudonyms."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from configs.settings import PrivacySettings
from features.loaders import load_online_retail, load_orders, parse_mapping, save_load
from features.privacy.erasure_log import erasure_hash, erasure_salt, read_erasures, record_erasures
from features.privacy.loading import load_privacy
from features.privacy.pseudonyms import KEY_ENV, PrivacyError, pseudonym, pseudonym_key
from features.storage import Workspace
from tests.privacy.scan import files_mentioning

SOURCE = """CustID,Invoice,When,Total,SKU,Name,Email,Street,Phone
c1,o1,2024-03-01 10:00,20.00,p1,Ann Smith,ann@example.com,1 Main St,+44 1234
c1,o2,2024-03-09 10:00,5.50,p2,Ann Smith,ann@example.com,1 Main St,+44 1234
c2,o3,2024-03-10 10:00,9.00,p1,Bob Jones,bob@example.com,2 High St,+44 5678
c2,o4,not a date,9.00,p1,Bob Jones,bob@example.com,2 High St,+44 5678
c3,o5,2024-03-11 12:00,abc,p3,Cy Lee,cy@example.com,3 Low Rd,+44 9999
c3,o6,2024-03-12 12:00,7.00,p3,Cy Lee,cy@example.com,3 Low Rd,+44 9999
"""
MAPPING = ["customer_id=CustID", "order_id=Invoice", "ordered_at=When", "amount=Total", "product_id=SKU"]
PERSONAL = ["Ann Smith", "ann@example.com", "1 Main St", "+44 1234", "Bob Jones", "bob@example.com", "2 High St",
            "Cy Lee", "cy@example.com", "3 Low Rd", "+44 9999"]
KEY = "correct horse battery"


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text(SOURCE)
    return path


def test_personal_columns_never_reach_the_workspace_and_are_named(tmp_path, source):
    ws = tmp_path / "ws"
    args = ["--workspace", str(ws), "data", "load", str(source)] + [a for m in MAPPING for a in ("--map", m)]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "columns not loaded: Name, Email, Street, Phone" in res.output
    assert "columns not loaded (outside the data contract)           4" in res.output
    assert "rows rejected                                            2" in res.output
    rejects = pd.read_parquet(ws / "data" / "rejects" / "rejects.parquet")
    assert list(rejects.columns) == ["row", "reason", "CustID", "Invoice", "When", "Total", "SKU"]
    assert rejects["row"].tolist() == [4, 5]
    for value in PERSONAL:  # in no table, no reject, no manifest: nowhere in the workspace
        assert files_mentioning([ws], value) == {}, value
    manifest = json.loads((ws / "data" / "manifest.json").read_text())
    assert manifest["dropped_columns"] == ["Name", "Email", "Street", "Phone"]
    assert manifest["customer_column"] == "CustID" and manifest["customer_ids"] == "as in the source"


def test_duplicates_are_judged_on_the_whole_row_of_the_file(tmp_path):
    # two lines equal in every contract column but different in a column that is not loaded stay two lines
    path = tmp_path / "dup.csv"
    path.write_text("customer_id,order_id,ordered_at,amount,line_note\n"
                    "c1,o1,2024-03-01,5,gift wrap\nc1,o1,2024-03-01,5,\nc1,o1,2024-03-01,5,\n")
    res = load_orders(path)
    assert len(res.tables["orders"]) == 2
    assert res.rejects["reason"].tolist() == ["exact duplicate of an earlier row"]
    assert res.dropped_columns == ["line_note"]


def test_erased_customers_do_not_come_back_on_the_next_load(tmp_path, source):
    ws = Workspace(tmp_path / "ws")
    mapping = parse_mapping(MAPPING)
    save_load(ws, load_orders(source, mapping=mapping))
    new = record_erasures(ws, ["c2"], pd.Timestamp("2024-05-01 08:00", tz="UTC"))
    assert new == [{"id_hash": erasure_hash("c2", erasure_salt(ws)), "erased_at": "2024-05-01T08:00:00+00:00"}]
    assert record_erasures(ws, ["c2"]) == [] and len(read_erasures(ws)) == 1  # once per customer

    res = load_orders(source, mapping=mapping, privacy=load_privacy(PrivacySettings(), ws))
    assert res.tables["customers"]["customer_id"].tolist() == ["c1", "c3"]
    assert res.tables["orders"]["order_id"].tolist() == ["o1", "o2", "o6"]
    assert res.rejects["row"].tolist() == [5]  # c2's bad row is skipped too; row numbers are the file's
    assert res.counts["rows of erased customers (not loaded)"] == 2
    assert res.counts["rows read"] == 6


def test_erasure_hashes_are_salted_per_workspace(tmp_path):
    a, b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    record_erasures(a, ["Customer-42"])
    record_erasures(b, ["Customer-42"])
    assert read_erasures(a)[0]["id_hash"] != read_erasures(b)[0]["id_hash"]
    assert files_mentioning([tmp_path], "Customer-42") == {}


def test_pseudonyms_are_keyed_hmac_sha256(monkeypatch):
    assert pseudonym("C1", KEY.encode()) == "52a72906a40d356f"
    assert pseudonym("C1", b"another key of 16+ chars") != "52a72906a40d356f"
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(PrivacyError, match="ECRM_PSEUDONYM_KEY is not set"):
        pseudonym_key()
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(PrivacyError, match="ECRM_PSEUDONYM_KEY is 5 characters long"):
        pseudonym_key()


def test_enabled_without_a_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(PrivacyError, match="pseudonymize_customer_ids is true but ECRM_PSEUDONYM_KEY is not set"):
        load_privacy(PrivacySettings(pseudonymize_customer_ids=True), Workspace(tmp_path / "ws"))


def test_load_replaces_ids_by_pseudonyms_everywhere(tmp_path, source, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    ws = Workspace(tmp_path / "ws")
    privacy = load_privacy(PrivacySettings(pseudonymize_customer_ids=True), ws)
    res = load_orders(source, mapping=parse_mapping(MAPPING), privacy=privacy)
    p = {c: pseudonym(c, KEY.encode()) for c in ("c1", "c2", "c3")}
    assert res.tables["customers"]["customer_id"].tolist() == sorted(p.values())
    assert res.tables["orders"]["customer_id"].tolist() == [p["c1"], p["c1"], p["c2"], p["c3"]]
    assert res.rejects["CustID"].tolist() == [p["c2"], p["c3"]]  # rejects never hold the raw id either
    save_load(ws, res)
    assert json.loads((ws.data_dir / "manifest.json").read_text())["customer_ids"] == "pseudonymized"
    # the forgotten customer is recognised by the id in the file, whatever the pseudonym
    record_erasures(ws, ["c1"])
    again = load_orders(source, mapping=parse_mapping(MAPPING), privacy=load_privacy(PrivacySettings(
        pseudonymize_customer_ids=True), ws))
    assert again.tables["customers"]["customer_id"].tolist() == sorted([p["c2"], p["c3"]])


def test_online_retail_ids_are_pseudonymized_after_cleaning(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    path = tmp_path / "or.csv"
    path.write_text("Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
                    "489434,85048,HEART HOLDER,12,2010-07-01 10:00,2.5,12346.0,United Kingdom\n"
                    "489435,85048,HEART HOLDER,1,2010-07-02 10:00,2.5,,France\n")
    privacy = load_privacy(PrivacySettings(pseudonymize_customer_ids=True), Workspace(tmp_path / "ws"))
    res = load_online_retail(path, privacy=privacy)
    assert res.tables["orders"]["customer_id"].tolist() == ["441097ad46b2c1d7", pd.NA]  # HMAC of "12346"
    assert res.pseudonymized and res.dropped_columns == []


def test_cli_prints_pseudonyms(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    res = CliRunner().invoke(app, ["privacy", "pseudonym", "C1", "12346"], catch_exceptions=False)
    assert res.exit_code == 0
    assert res.output == "C1\t52a72906a40d356f\n12346\t441097ad46b2c1d7\n"
