"""``apa data speechocean762 DEST``: the official release, downloaded, verified, unpacked and checked.

OpenSLR (resource 101) serves speechocean762 as one tarball of about 520 MB, licensed CC BY 4.0,
and publishes no checksum. So apa verifies what can be verified: the size the server announces,
the gzip stream and the tar structure read to their end, a SHA-256 you give (``--sha256``, one your
lab recorded), and the unpacked corpus, read strictly by apa's own reader (every label, text,
speaker and audio header). The SHA-256 of what was downloaded is printed and written beside the
archive, so that other machines can pin it.

Resumable: the download goes to ``<archive>.part`` and an interrupted one continues from its size
(an HTTP range request). The archive unpacks into a hidden folder that becomes
``DEST/speechocean762`` only once it is complete and checked: a corrupt or truncated download
never leaves a folder that looks finished.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import logging
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from apa.data import Speechocean762
from apa.data.corpus import CorpusError
from apa.data.speechocean762 import SCORES_FILE, SPLITS

MIRRORS = (
    "https://www.openslr.org/resources/101/speechocean762.tar.gz",
    "https://openslr.elda.org/resources/101/speechocean762.tar.gz",
    "https://openslr.magicdatatech.com/resources/101/speechocean762.tar.gz",
)
ARCHIVE = "speechocean762.tar.gz"
FOLDER = "speechocean762"  # the tarball's top folder, and where it ends up in DEST
CHUNK = 1 << 20

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A download, an archive or an unpacked corpus that cannot be used, and what to do about it."""


def fetch(url: str, archive: Path) -> Path:
    """``url`` saved as ``archive``, resuming ``<archive>.part`` if an earlier run left one."""
    part = archive.with_name(archive.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "apa", **({"Range": f"bytes={start}-"} if start else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            resumed = start > 0 and getattr(response, "status", None) == 206
            length = response.headers.get("Content-Length")
            total = (start if resumed else 0) + int(length) if length else None
            with (
                part.open("ab" if resumed else "wb") as out,
                progress(archive.name, total, start if resumed else 0) as bar,
            ):
                if start and not resumed:
                    log.info("%s does not resume downloads: starting again from its first byte", url)
                copy(response, out, bar)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        got = part.stat().st_size if part.exists() else 0
        raise DownloadError(f"{url}: the download stopped at {got:,} bytes ({error}); run again to resume") from error
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"{url}: got {size:,} of {total:,} bytes; run again to resume")
    part.replace(archive)
    return archive


def progress(name: str, total: int | None, initial: int = 0) -> tqdm:
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def copy(source, out, bar: tqdm) -> None:
    while chunk := source.read(CHUNK):
        out.write(chunk)
        bar.update(len(chunk))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source, progress(f"SHA-256 of {path.name}", path.stat().st_size) as bar:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def verify(archive: Path, expected: str | None) -> str:
    """The archive's SHA-256, written beside it; a mismatch with ``expected`` removes the archive."""
    found = sha256_of(archive)
    if expected is not None and found != expected.lower():
        discard(archive)
        raise DownloadError(
            f"{archive}: SHA-256 {found}, not the {expected} given; the archive was removed, run again to download it"
        )
    checksum_file(archive).write_text(f"{found}  {archive.name}\n")
    return found


def checksum_file(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def discard(archive: Path) -> None:
    """Remove an archive that cannot be used, and its recorded SHA-256, so the next run downloads it."""
    archive.unlink(missing_ok=True)
    checksum_file(archive).unlink(missing_ok=True)


def unpack(archive: Path, dest: Path) -> Path:
    """The archive's corpus, unpacked and checked, moved to ``dest/speechocean762`` only when whole.
    A corrupt or truncated archive is removed, so that the next run downloads it again."""
    staging = dest / f".{FOLDER}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        try:
            read_to_the_end(archive)
            with tarfile.open(archive, "r|gz") as tar:  # one sequential pass: no member list, no rewinds
                for member in tqdm(tar, desc=f"unpacking {archive.name}", unit="file"):
                    tar.extract(member, staging, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            discard(archive)
            raise DownloadError(
                f"{archive}: corrupt or truncated archive ({type(error).__name__}: {error}); "
                "it was removed, run again to download it"
            ) from error
        check(staging / FOLDER)
        (staging / FOLDER).replace(dest / FOLDER)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest / FOLDER


def read_to_the_end(archive: Path) -> None:
    """Decompress the whole gzip stream: a cut or damaged archive fails its length or CRC check here
    (tar alone stops at its end-of-archive marker and never reads the trailer that would tell)."""
    with gzip.open(archive) as stream, progress(f"checking {archive.name}", archive.stat().st_size) as bar:
        while stream.read(CHUNK):
            bar.n = stream.fileobj.tell()
            bar.refresh()


def check(root: Path) -> dict[str, list]:
    """Every split read strictly by apa's reader (labels, texts, speakers, audio headers)."""
    if not (root / SCORES_FILE).is_file():
        raise DownloadError(
            f"{root}: no {SCORES_FILE}; the archive does not hold speechocean762 in the official layout"
        )
    corpus = Speechocean762(str(root), strict=True)
    try:
        return {split: corpus.utterances(split) for split in SPLITS}
    except (CorpusError, FileNotFoundError) as error:
        raise DownloadError(f"{root}: not a usable speechocean762 corpus: {error}") from error


def summary(root: Path, splits: dict[str, list]) -> str:
    counts = ", ".join(
        f"{split} {len(items):,} utterances of {len({u.speaker for u in items})} speakers"
        for split, items in splits.items()
    )
    return (
        f"speechocean762 at {root}: {counts}\n"
        f"Point the presets at it: export APA_SPEECHOCEAN762={root}   (or data.root={root})"
    )


def speechocean762(dest: Path, urls: Sequence[str] = MIRRORS, sha256: str | None = None) -> Path:
    """Download (from the first of ``urls`` that answers), verify, unpack and check the corpus into
    ``dest/speechocean762``; a corpus already there is checked, not fetched again."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / FOLDER
    if target.exists():
        try:
            print(summary(target, check(target)))
        except DownloadError as error:
            raise DownloadError(f"{error}\n(remove {target} to download it again)") from error
        return target
    archive = dest / ARCHIVE
    if not archive.is_file():
        errors = []
        for url in urls:
            try:
                fetch(url, archive)
                break
            except DownloadError as error:
                errors.append(str(error))
        else:
            raise DownloadError("no mirror gave the archive:\n  " + "\n  ".join(errors))
    print(f"SHA-256 {verify(archive, sha256)}  {archive}")
    unpack(archive, dest)
    print(summary(target, check(target)))
    return target


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apa data",
        description="Get a corpus: download the official release, verify it, unpack it and check its layout.",
        epilog="speechocean762: OpenSLR resource 101, CC BY 4.0 (Zhang et al., 2021); about 520 MB.",
    )
    parser.add_argument("corpus", choices=["speechocean762"], help="the corpus to get")
    parser.add_argument("dest", type=Path, metavar="DEST", help="where it goes: DEST/speechocean762")
    parser.add_argument(
        "--url", action="append", metavar="URL", help="where to download from (repeatable; default: OpenSLR's mirrors)"
    )
    parser.add_argument("--sha256", metavar="HEX", help="the archive's expected SHA-256 (OpenSLR publishes none)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        speechocean762(args.dest, args.url or MIRRORS, args.sha256)
    except DownloadError as error:
        sys.exit(f"apa data: error: {error}")


if __name__ == "__main__":
    main()
