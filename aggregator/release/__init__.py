"""Release writers: everything that leaves the secretariat (xlsx, csv, parquet, html, manifest) plus
the secretariat-only audit report. One door: `write_release(release, out_dir)`."""

from aggregator.release.audit import render_audit_files, write_audit_report
from aggregator.release.model import InvalidRelease, Release, ReleasedCell, ReleasedTable
from aggregator.release.writer import ReleaseFile, ReleaseFiles, write_release

__all__ = [
    "InvalidRelease",
    "Release",
    "ReleaseFile",
    "ReleaseFiles",
    "ReleasedCell",
    "ReleasedTable",
    "render_audit_files",
    "write_audit_report",
    "write_release",
]
