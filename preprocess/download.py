"""``python -m preprocess download ptbxl DIR``: PTB-XL from PhysioNet, resumable and verified.

Files keep PhysioNet's layout under DIR, so the result is a PTB-XL folder for
``python -m preprocess ptbxl``. Every file is checked against the dataset's published
SHA256SUMS.txt. A download that breaks off continues where it stopped (HTTP Range) on
the next try or the next run; a file whose checksum does not match is discarded and
reported, never kept. Files already present and verified are not fetched again.
"""

from __future__ import annotations

import csv
import http.client
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ecgdist.files import file_sha256

log = logging.getLogger(__name__)
PHYSIONET_PTBXL = "https://physionet.org/files/ptb-xl/1.0.3/"
METADATA_FILES = ("ptbxl_database.csv", "scp_statements.csv")
RATE_COLUMN = {"500": "filename_hr", "100": "filename_lr"}


class DownloadError(Exception):
    pass


@dataclass
class DownloadReport:
    fetched: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)  # already present and matching
    missing: list[str] = field(default_factory=list)  # not on the server
    corrupt: list[str] = field(default_factory=list)  # checksum mismatch: discarded


class Downloader:
    def __init__(self, base_url: str, out: Path, retries: int = 3, timeout_s: float = 30) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.out, self.retries, self.timeout_s = out, retries, timeout_s
        self.checksums: dict[str, str] = {}

    def read_checksums(self) -> None:
        with urllib.request.urlopen(self.base_url + "SHA256SUMS.txt", timeout=self.timeout_s) as response:
            for line in response.read().decode().splitlines():
                digest, _, name = line.strip().partition(" ")
                if digest and name:
                    self.checksums[name.strip().lstrip("*")] = digest

    def fetch(self, name: str, report: DownloadReport) -> bool:
        """Download ``name`` (relative to the dataset root); False when the server lacks it."""
        dest = self.out / name
        want = self.checksums.get(name)
        if dest.exists() and (want is None or file_sha256(dest) == want):
            report.verified.append(name)
            return True
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        for attempt in range(1, self.retries + 1):
            try:
                self._stream(name, part)
                break
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    report.missing.append(name)
                    return False
                if attempt == self.retries:
                    raise DownloadError(f"{name}: HTTP {error.code}") from None
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
                log.warning("%s broke off (%s); resuming (try %d/%d)", name, error, attempt, self.retries)
                if attempt == self.retries:
                    raise DownloadError(f"{name}: {error} after {self.retries} tries") from None
        if want is not None and file_sha256(part) != want:
            part.unlink()
            report.corrupt.append(name)
            log.error("%s does not match its published SHA-256: discarded", name)
            return False
        part.replace(dest)
        report.fetched.append(name)
        return True

    def _stream(self, name: str, part: Path) -> None:
        start = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(self.base_url + name, headers={"Range": f"bytes={start}-"} if start else {})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            resumed = start and response.status == 206  # 200: the server ignored the range
            expected = int(response.headers.get("Content-Length", -1))
            received = 0
            with open(part, "ab" if resumed else "wb") as f:
                while block := response.read(1 << 16):
                    f.write(block)
                    received += len(block)
        if 0 <= received < expected:  # http.client reports a dropped connection as a short read
            raise ConnectionError(f"connection closed after {received} of {expected} bytes")


def database_rows(path: Path, records: int | None) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[:records] if records else rows


def download_ptbxl(out: Path, records: int | None = None, base_url: str = PHYSIONET_PTBXL,
                   rates: tuple[str, ...] = ("500",), progress: bool = True) -> DownloadReport:
    """The metadata and the first ``records`` records (all when None) at ``rates``.

    A record missing at the requested rate is fetched at the other rate instead, so that
    the folder always holds some signal for every record downloaded.
    """
    downloader, report = Downloader(base_url, Path(out)), DownloadReport()
    downloader.read_checksums()
    for name in METADATA_FILES:
        if not downloader.fetch(name, report):
            raise DownloadError(f"{name} could not be downloaded from {downloader.base_url}")
    rows = database_rows(Path(out) / "ptbxl_database.csv", records)
    for row in tqdm(rows, unit="rec", desc="PTB-XL", disable=not progress):
        for rate in rates:
            stems = [row[RATE_COLUMN[rate]]] + [row[RATE_COLUMN[r]] for r in RATE_COLUMN if r not in rates]
            for stem in stems:
                if all(downloader.fetch(f"{stem}{ext}", report) for ext in (".hea", ".dat")):
                    break
    return report
