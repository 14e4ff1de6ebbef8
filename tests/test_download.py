"""``apa data speechocean762``: the same code as against OpenSLR, offline, on a small tarball of the
synthetic corpus served from a file:// URL and from a local HTTP server that resumes and can cut
a download short."""

import hashlib
import http.server
import tarfile
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from apa import download
from apa.download import DownloadError


@pytest.fixture(scope="module")
def tarball(synthetic_corpus, tmp_path_factory) -> Path:
    """The synthetic corpus packed as OpenSLR packs the real one (a top folder speechocean762/)."""
    path = tmp_path_factory.mktemp("release") / "speechocean762.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(synthetic_corpus, arcname="speechocean762")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_the_corpus_is_downloaded_verified_unpacked_and_checked(tarball, tmp_path, capsys):
    dest = tmp_path / "data"
    root = download.speechocean762(dest, [tarball.as_uri()], sha256=sha256(tarball))
    assert root == dest / "speechocean762" and (root / "resource" / "scores.json").is_file()
    printed = capsys.readouterr().out
    assert f"SHA-256 {sha256(tarball)}" in printed
    assert "train 18 utterances of 3 speakers, test 12 utterances of 2 speakers" in printed
    assert f"export APA_SPEECHOCEAN762={root}" in printed
    assert (dest / "speechocean762.tar.gz.sha256").read_text().split()[0] == sha256(tarball)
    assert leftovers(dest) == ["speechocean762", "speechocean762.tar.gz", "speechocean762.tar.gz.sha256"]
    download.speechocean762(dest, ["file:///nowhere/speechocean762.tar.gz"])  # already there: checked, not fetched
    assert "train 18 utterances" in capsys.readouterr().out


def test_a_checksum_mismatch_removes_the_archive_and_unpacks_nothing(tarball, tmp_path):
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match="not the 00 given; the archive was removed"):
        download.speechocean762(dest, [tarball.as_uri()], sha256="00")
    assert leftovers(dest) == []


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_damaged_archive_is_named_and_nothing_half_unpacked_is_left(tarball, tmp_path, damage):
    data = bytearray(tarball.read_bytes())
    if damage == "corrupt":
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    else:
        data = data[: len(data) // 2]
    served = tmp_path / "served" / "speechocean762.tar.gz"
    served.parent.mkdir()
    served.write_bytes(bytes(data))
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match=r"corrupt or truncated archive .* run again to download it"):
        download.speechocean762(dest, [served.as_uri()])
    assert leftovers(dest) == []  # no archive to trust, no folder that looks finished


def test_a_folder_that_is_not_the_corpus_is_refused(tmp_path):
    archive = tmp_path / "served" / "speechocean762.tar.gz"
    archive.parent.mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "README").write_text("not a corpus")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "other", arcname="speechocean762")
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match=r"no resource/scores\.json; the archive does not hold speechocean762"):
        download.speechocean762(dest, [archive.as_uri()])
    assert "speechocean762" not in leftovers(dest)


class Release(http.server.BaseHTTPRequestHandler):
    """Serves one file, honouring ``Range: bytes=N-``; ``cut`` bytes short of what it announces."""

    body: ClassVar[bytes] = b""
    cut: ClassVar[int] = 0
    ranges: ClassVar[list[int]] = []

    def do_GET(self):
        start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-")) if self.headers["Range"] else 0
        self.ranges.append(start)
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(self.body) - start))
        self.end_headers()
        self.wfile.write(self.body[start : len(self.body) - self.cut])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tarball):
    Release.body, Release.cut, Release.ranges = tarball.read_bytes(), 0, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Release)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/speechocean762.tar.gz"
    httpd.shutdown()


def test_a_download_cut_short_is_named_and_resumed_by_the_next_run(server, tarball, tmp_path):
    dest = tmp_path / "data"
    Release.cut = 1000
    with pytest.raises(DownloadError, match="run again to resume"):
        download.speechocean762(dest, [server])
    assert leftovers(dest) == ["speechocean762.tar.gz.part"]
    Release.cut = 0
    download.speechocean762(dest, [server], sha256=sha256(tarball))
    assert Release.ranges[1] == len(Release.body) - 1000  # only the missing bytes were asked for
    assert sha256(dest / "speechocean762.tar.gz") == sha256(tarball)


def test_the_command_line_says_what_went_wrong(tarball, tmp_path):
    with pytest.raises(SystemExit) as caught:
        download.main(["speechocean762", str(tmp_path / "data"), "--url", tarball.as_uri(), "--sha256", "00"])
    assert str(caught.value.code).startswith("apa data: error: ") and "SHA-256" in str(caught.value.code)
