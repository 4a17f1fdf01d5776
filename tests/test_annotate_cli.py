"""``densepose annotate`` commands: import, add-user, export, and one-line errors for user mistakes."""
from __future__ import annotations

import json

import pytest

from densepose.cli.annotate import main
from test_annotate_helpers import make_synthetic, write_image


def test_cli_import_users_export(tmp_path, sphere_surface, capsys):
    synth = make_synthetic(tmp_path / "synth", sphere_surface, n_images=1)
    proj = str(tmp_path / "proj")
    assert main(["import", "--project", proj, "--coco", str(synth / "annotations.json"),
                 "--image-root", str(synth / "images"), "--truth", str(synth / "dense")]) == 0
    assert "1 images and 1 persons" in capsys.readouterr().out
    assert main(["add-user", "--project", proj, "alice"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 32
    assert main(["add-user", "--project", proj, "alice"]) == 2
    assert "already exists" in capsys.readouterr().err
    out = tmp_path / "export.json"
    assert main(["export", "--project", proj, "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["annotations"]) == 1


@pytest.mark.parametrize("argv, message", [
    (["import", "--project", "{p}", "--coco", "{t}/missing.json", "--image-root", "{t}"], "COCO JSON file not found"),
    (["import", "--project", "{p}", "--coco", "{t}/x.json"], "needs --image-root"),
    (["import", "--project", "{p}", "--images", "{t}/nothing"], "no such image folder"),
    (["export", "--project", "{t}/nowhere", "--out", "{t}/o.json"], "not an annotation project"),
    (["add-user", "--project", "{p}", "bad name!"], "user name"),
    (["simulate", "--project", "{p}", "--user", "ghost"], "no user 'ghost'"),
])
def test_cli_user_errors(tmp_path, capsys, argv, message):
    folder = tmp_path / "imgs"
    write_image(folder / "a.png", 32, 32)
    main(["import", "--project", str(tmp_path / "p"), "--images", str(folder)])
    capsys.readouterr()
    argv = [a.format(p=tmp_path / "p", t=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_browser_tests_never_skip_silently_in_ci(tmp_path):
    """Without chromium on PATH, the browser tests (which skip on a workstation) fail the run in CI."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    bin_dir = tmp_path / "bin"  # a PATH holding python and nothing else
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    tests = Path(__file__).parent
    env = dict(os.environ, PATH=str(bin_dir), CI="true")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
                        str(tests / "test_annotate_browser.py")], cwd=tests.parent, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0 and "CI=true but no headless browser" in r.stdout, r.stdout[-2000:]
