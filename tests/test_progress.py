"""Progress bars only on a terminal: a redirected log gets the summary lines, never tqdm's carriage-return frames."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios
import subprocess
import sys
from pathlib import Path

from extract_fixtures import post_rows, write_manifest
from pipeline.progress import progress

SGMFT = Path(sys.executable).with_name("sgmft")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def draw(stream, quiet: bool = False) -> str:
    bar = progress(3, "work", "post", quiet, file=stream, mininterval=0)
    for _ in range(3):
        bar.update(1)
    bar.close()
    return stream.getvalue()


def test_a_bar_is_drawn_on_a_terminal_only_and_never_when_quiet():
    assert "post/s" in draw(Terminal()) or "3/3" in draw(Terminal())
    assert draw(io.StringIO()) == ""  # a file or a pipe
    assert draw(Terminal(), quiet=True) == ""


def in_terminal(args: list[str]) -> str:
    """Everything a command writes when its stdout and stderr are a pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 rows, 100 columns, as a real one
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait()
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_extract_shows_its_bar_in_a_terminal_and_writes_a_clean_log(tmp_path):
    manifest = write_manifest(tmp_path / "posts.csv", post_rows(tmp_path, 12))
    args = [str(SGMFT), "extract", "--manifest", str(manifest), "--model", "tiny", "--workers", "0"]
    shown = in_terminal([*args, "--cache", str(tmp_path / "a.h5")])
    assert "extract train" in shown and "\r" in shown  # the live bar
    log = tmp_path / "extract.log"
    with log.open("w") as f:
        subprocess.run([*args, "--cache", str(tmp_path / "b.h5")], stdout=f, stderr=subprocess.STDOUT, check=True)
    text = log.read_text()
    assert "\r" not in text and "extract train" not in text
    assert "train: 9 posts: 9 encoded now" in text and "time: waiting for decode" in text  # the summary lines
