"""``python -m preprocess download SOURCE DIR``: the open corpora in their published layouts.

    ptbxl          PTB-XL from PhysioNet (metadata, then records at the chosen rate)
    physionet2021  the PhysioNet/CinC Challenge 2021 training set (WFDB .hea + .mat)
    mimic-iv-ecg   MIMIC-IV-ECG (record_list.csv, machine_measurements.csv, then records)
    code15         CODE-15 % from Zenodo (exams.csv and the exams_partN.zip parts, unzipped)

Files keep the publisher's layout under DIR, so the result is a folder the matching
``python -m preprocess SOURCE DIR OUT`` reads. Every file is checked against the checksum
its publisher gives (PhysioNet's SHA256SUMS.txt, the MD5 of Zenodo's record) and reported
as unverified when none is published. A download that breaks off continues where it
stopped (HTTP Range) on the next try or the next run; a file whose checksum does not
match is discarded and reported, never kept; files already present and verified are not
fetched again. ``--records N`` / ``--parts N`` take a subset.
"""

from __future__ import annotations

import csv
import http.client
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ecgdist.files import atomic_write_text, file_digest, temp_path_for

log = logging.getLogger(__name__)
SOURCES = {  # name -> where the publisher serves it
    "ptbxl": "https://physionet.org/files/ptb-xl/1.0.3/",
    "physionet2021": "https://physionet.org/files/challenge-2021/1.0.3/",
    "mimic-iv-ecg": "https://physionet.org/files/mimic-iv-ecg/1.0/",
    "code15": "https://zenodo.org/api/records/4916206",
}
PTBXL_METADATA = ("ptbxl_database.csv", "scp_statements.csv")
RATE_COLUMN = {"500": "filename_hr", "100": "filename_lr"}
MIMIC_METADATA = ("record_list.csv", "machine_measurements.csv")


class DownloadError(Exception):
    pass


@dataclass
class DownloadReport:
    fetched: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)  # already present and matching
    missing: list[str] = field(default_factory=list)  # not on the server
    corrupt: list[str] = field(default_factory=list)  # checksum mismatch: discarded
    unverified: list[str] = field(default_factory=list)  # kept, but the publisher gives no checksum for it


class Downloader:
    """Fetches files of one dataset by name: ``urls[name]`` or ``base_url + name``, checked against
    ``checksums[name]`` = (algorithm, hex digest) where the publisher gives one."""

    def __init__(self, base_url: str, out: Path, retries: int = 3, timeout_s: float = 30) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.out, self.retries, self.timeout_s = Path(out), retries, timeout_s
        self.checksums: dict[str, tuple[str, str]] = {}
        self.urls: dict[str, str] = {}

    def open(self, url: str, headers: dict | None = None):
        try:
            return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=self.timeout_s)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as error:
            host = urllib.parse.urlsplit(url).netloc
            raise DownloadError(f"cannot reach {host}: {getattr(error, 'reason', error)}") from None

    def read_text(self, name: str) -> str:
        try:
            with self.open(self.base_url + name) as response:
                return response.read().decode()
        except urllib.error.HTTPError as error:
            raise DownloadError(f"{self.base_url + name}: HTTP {error.code}") from None

    def read_sha256sums(self) -> None:
        """PhysioNet's SHA256SUMS.txt: one "digest name" line per file of the dataset."""
        for line in self.read_text("SHA256SUMS.txt").splitlines():
            digest, _, name = line.strip().partition(" ")
            if digest and name:
                self.checksums[name.strip().lstrip("*")] = ("sha256", digest)

    def fetch(self, name: str, report: DownloadReport, dest: Path | None = None) -> bool:
        """Download ``name`` to ``dest`` (default: its path under the output); False when the server lacks it."""
        dest = dest or self.out / name
        want = self.checksums.get(name)
        if dest.exists() and (want is None or file_digest(dest, want[0]) == want[1]):
            report.verified.append(name)
            return True
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        # A run killed after the last byte but before the check leaves a complete .part: finish it.
        complete = part.exists() and want is not None and file_digest(part, want[0]) == want[1]
        for attempt in range(1, self.retries + 1):
            if complete:
                break
            try:
                self._stream(self.urls.get(name, self.base_url + name), part)
                break
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    report.missing.append(name)
                    return False
                if error.code == 416:  # the .part holds every byte the server has: the checksum decides
                    break
                if attempt == self.retries:
                    raise DownloadError(f"{name}: HTTP {error.code}") from None
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
                log.warning("%s broke off (%s); resuming (try %d/%d)", name, error, attempt, self.retries)
                if attempt == self.retries:
                    raise DownloadError(f"{name}: {error} after {self.retries} tries") from None
        if want is not None and file_digest(part, want[0]) != want[1]:
            part.unlink()
            report.corrupt.append(name)
            log.error("%s does not match its published %s: discarded", name, want[0].upper())
            return False
        part.replace(dest)
        report.fetched.append(name)
        if want is None:
            report.unverified.append(name)
        return True

    def _stream(self, url: str, part: Path) -> None:
        start = part.stat().st_size if part.exists() else 0
        with self.open(url, {"Range": f"bytes={start}-"} if start else None) as response:
            resumed = start and response.status == 206  # 200: the server ignored the range
            expected = int(response.headers.get("Content-Length", -1))
            received = 0
            try:
                with open(part, "ab" if resumed else "wb") as f:
                    while block := response.read(1 << 16):
                        f.write(block)
                        received += len(block)
            except OSError as error:  # a full disk: name the file (kept as .part, so a rerun resumes)
                raise OSError(error.errno, error.strerror, str(part)) from None
        if 0 <= received < expected:  # http.client reports a dropped connection as a short read
            raise ConnectionError(f"connection closed after {received} of {expected} bytes")

    def require(self, names: tuple[str, ...], report: DownloadReport) -> None:
        for name in names:
            if not self.fetch(name, report):
                raise DownloadError(f"{name} could not be downloaded from {self.base_url}")


def csv_rows(path: Path, records: int | None) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[:records] if records else rows


DOWNLOAD_RECORD = "DOWNLOAD.json"  # which release a folder was downloaded from; preprocessing copies it


def record_download(out: Path, dataset: str, base_url: str) -> None:
    """Name the release in the folder (PhysioNet's URLs end in it), for the corpus and the results table."""
    version = re.search(r"/(\d+(?:\.\d+)+)/?$", base_url)
    atomic_write_text(Path(out) / DOWNLOAD_RECORD, json.dumps(
        {"dataset": dataset, "url": base_url, "version": version.group(1) if version else "unknown"}))


def download_ptbxl(out: Path, records: int | None = None, base_url: str = SOURCES["ptbxl"],
                   rates: tuple[str, ...] = ("500",), progress: bool = True) -> DownloadReport:
    """The metadata and the first ``records`` records (all when None) at ``rates``.

    A record missing at the requested rate is fetched at the other rate instead, so that
    the folder always holds some signal for every record downloaded.
    """
    downloader, report = Downloader(base_url, out), DownloadReport()
    downloader.read_sha256sums()
    downloader.require(PTBXL_METADATA, report)
    record_download(out, "ptb-xl", base_url)
    for row in tqdm(csv_rows(Path(out) / "ptbxl_database.csv", records), unit="rec", desc="PTB-XL",
                    disable=not progress):
        for rate in rates:
            stems = [row[RATE_COLUMN[rate]]] + [row[RATE_COLUMN[r]] for r in RATE_COLUMN if r not in rates]
            for stem in stems:
                if all(downloader.fetch(f"{stem}{ext}", report) for ext in (".hea", ".dat")):
                    break
    return report


def download_physionet2021(out: Path, records: int | None = None, base_url: str = SOURCES["physionet2021"],
                           progress: bool = True) -> DownloadReport:
    """The first ``records`` records (all when None) of the Challenge's training set, in the order
    SHA256SUMS.txt lists them: each a header and its .mat signal file."""
    downloader, report = Downloader(base_url, out), DownloadReport()
    downloader.read_sha256sums()
    headers = sorted(n for n in downloader.checksums if n.startswith("training/") and n.endswith(".hea"))
    if not headers:
        raise DownloadError(f"{base_url}SHA256SUMS.txt lists no training/*.hea: is this the Challenge 2021 folder?")
    for header in tqdm(headers[:records] if records else headers, unit="rec", desc="PhysioNet 2021",
                       disable=not progress):
        if downloader.fetch(header, report):
            downloader.fetch(header.removesuffix(".hea") + ".mat", report)
    return report


def download_mimic_iv_ecg(out: Path, records: int | None = None, base_url: str = SOURCES["mimic-iv-ecg"],
                          progress: bool = True) -> DownloadReport:
    """record_list.csv and machine_measurements.csv, then the first ``records`` records it lists."""
    downloader, report = Downloader(base_url, out), DownloadReport()
    downloader.read_sha256sums()
    downloader.require(MIMIC_METADATA, report)
    for row in tqdm(csv_rows(Path(out) / "record_list.csv", records), unit="rec", desc="MIMIC-IV-ECG",
                    disable=not progress):
        stem = row["path"].strip()
        if downloader.fetch(f"{stem}.hea", report):
            downloader.fetch(f"{stem}.dat", report)
    return report


def download_code15(out: Path, parts: int | None = None, base_url: str = SOURCES["code15"],
                    progress: bool = True) -> DownloadReport:
    """exams.csv and the first ``parts`` exams_partN.zip of the Zenodo record (all when None),
    each checked against the record's MD5 and unzipped to exams_partN.hdf5 (then removed)."""
    downloader, report = Downloader(base_url, out), DownloadReport()
    try:
        with downloader.open(base_url) as response:
            files = json.loads(response.read())["files"]
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{base_url}: HTTP {error.code}") from None
    except (json.JSONDecodeError, KeyError):
        raise DownloadError(f"{base_url} is not a Zenodo record (no file list)") from None
    for entry in files:
        algorithm, _, digest = entry.get("checksum", "").partition(":")
        if digest:
            downloader.checksums[entry["key"]] = (algorithm, digest)
        downloader.urls[entry["key"]] = entry["links"]["self"]
    downloader.require(("exams.csv",), report)
    zips = sorted((k for k in downloader.urls if k.startswith("exams_part") and k.endswith(".zip")),
                  key=lambda k: int(k.removeprefix("exams_part").removesuffix(".zip")))
    for name in tqdm(zips[:parts] if parts else zips, unit="part", desc="CODE-15%", disable=not progress):
        hdf5 = Path(out) / name.replace(".zip", ".hdf5")
        if hdf5.exists():  # unzipped by an earlier run (only after its zip matched)
            report.verified.append(name)
            continue
        if downloader.fetch(name, report):
            unzip(Path(out) / name, hdf5)
    return report


def unzip(archive: Path, member_path: Path) -> None:
    """Extract ``member_path.name`` from ``archive`` atomically, then remove the archive."""
    with zipfile.ZipFile(archive) as z:
        member = next((m for m in z.namelist() if Path(m).name == member_path.name), None)
        if member is None:
            raise DownloadError(f"{archive.name} holds no {member_path.name}")
        tmp = temp_path_for(member_path)
        try:
            with z.open(member) as src, open(tmp, "wb") as dst:
                while block := src.read(1 << 22):
                    dst.write(block)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, member_path)
    archive.unlink()
