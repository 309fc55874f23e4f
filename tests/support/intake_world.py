"""The small intake world many tests share: a workspace with three registered textile companies (in-memory
keys), an inbox and a staging folder, and helpers to seal files as the companies would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from aggregator.cli.secretariat import main as aggregator
from aggregator.intake import IntakeReport, run_intake
from aggregator.registry import Registry
from aggregator.workspace import Workspace, create_workspace
from imvo_submit.company import seal_submission
from imvo_submit.envelope import keys

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES = ROOT / "sample_data" / "submissions" / "textile" / "2025-01"
MATERIALS = SAMPLES / "T001__materials.csv"
LIVING_WAGE = SAMPLES / "T001__living_wage.csv"
PASSPHRASE = "correct horse battery staple"
REGISTERED = "2025-01-02T09:00:00Z"
SEALED = "2025-02-10T09:00:00Z"
NOW = "2025-02-28T09:00:00Z"
# A value of MATERIALS that appears nowhere else: it must never reach the disk outside the encrypted store.
PLAINTEXT_MARKER = b"1337629.5"
STATES = ("accepted", "duplicate", "superseded", "quarantined")


@dataclass
class World:
    ws: Workspace
    keys: dict
    inbox: Path
    staging: Path

    def seal(
        self,
        source: Path,
        *,
        company: str = "T001",
        signer: str | None = None,
        period: str = "2025-01",
        created: str = SEALED,
        template: str | None = None,
        check: bool = True,
        name: str | None = None,
    ) -> Path:
        """Seal `source` as `company` would (signed with `signer`'s key) and drop it in the inbox as `name`."""
        sealed = seal_submission(
            source,
            self.staging,
            company_id=company,
            covenant="textile",
            period=period,
            recipient_key=keys.load_public_key(self.ws.keys_dir / "secretariat_encryption.pub"),
            signing_key=self.keys[signer or company],
            created=created,
            template=template,
            check=check,
        )
        return sealed.rename(self.inbox / (name or sealed.name))

    def drop(self, name: str, data: bytes) -> Path:
        target = self.inbox / name
        target.write_bytes(data)
        return target

    def intake(self, **kwargs) -> IntakeReport:
        kwargs.setdefault("now", NOW)
        return run_intake(self.ws, self.inbox, **kwargs)

    def records(self) -> list[dict]:
        with self.ws.open_store() as store:
            frame = store.query_df("SELECT * FROM submissions ORDER BY received_at, original_name")
        return frame.to_dict("records")

    def record(self, name: str) -> dict:
        (found,) = [r for r in self.records() if r["original_name"] == name]
        return found

    def count_rows(self, template: str) -> int:
        with self.ws.open_store() as store:
            return store.con.execute(f"SELECT count(*) FROM rows_textile_{template}").fetchone()[0]

    def received_files(self) -> dict[str, list[str]]:
        return {
            state: sorted(p.name for p in (self.ws.received_dir / state).glob("*"))
            for state in STATES
            if (self.ws.received_dir / state).is_dir()
        }

    def cli(self, *args: str, now: str = NOW) -> Result:
        """`aggregator ARGS` on this workspace, as a clerk types it (output is not a terminal)."""
        env = {"AGGREGATOR_WORKSPACE": str(self.ws.root), "AGGREGATOR_PASSPHRASE": PASSPHRASE, "AGGREGATOR_NOW": now}
        done = CliRunner(env=env).invoke(aggregator, list(args), catch_exceptions=False)
        assert "Traceback" not in done.output
        return done

    def signing_public_key(self):
        return keys.load_public_key(self.ws.keys_dir / "secretariat_signing.pub")


def build_world(root: Path) -> World:
    ws = create_workspace(root / "ws", PASSPHRASE, [ROOT / "protocols" / "textile.toml"])
    company_keys = {c: keys.generate_signing_key() for c in ("T001", "T002", "T003", "X999")}
    with ws.open_store() as store:
        registry = Registry(store)
        for company in ("T001", "T002", "T003"):
            raw = keys.public_key_bytes(company_keys[company].public_key())
            registry.add(company, f"Company {company}", ["textile"], raw, now=REGISTERED)
    (root / "inbox").mkdir()
    (root / "staging").mkdir()
    return World(ws, company_keys, root / "inbox", root / "staging")


def only(report: IntakeReport):
    (outcome,) = report.outcomes
    return outcome


def edited(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """A copy of `source` with one value changed (a correction, or an invalid value)."""
    target = tmp_path / source.name
    text = source.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target
