"""``nncore-train`` / ``python -m nncore``: help text, --data-dir, what it says
it trains on, and no side effects in the user's home folder."""
import os
import subprocess
import sys

import pytest

from conftest import child_env, fashion_mnist_dir



def _run(args, tmp_path):
    env = child_env(NNCORE_HOME=str(tmp_path / "home"))
    return subprocess.run([sys.executable, "-m", "nncore", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_help_lists_every_option_with_its_default(tmp_path):
    proc = _run(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    options = " ".join(out[out.index("options:"):].split())
    for option, default in (("--epochs N", "20"), ("--batch-size N", "32"),
                            ("--seed SEED", "42"), ("--verbose {0,1,2}", "2")):
        help_text = options[options.index(option):][:160]
        assert f"(default: {default})" in help_text, (option, help_text)
    assert "--data-dir DIR" in out and "NNCORE_DATA_DIR" in out
    assert "48,000 train / 12,000 validation" in out


def test_bad_data_dir_is_refused(tmp_path):
    proc = _run(["--data-dir", str(tmp_path / "nope")], tmp_path)
    assert proc.returncode == 2 and "no such folder" in proc.stderr


def test_data_dir_trains_on_48000_and_validates_on_12000(tmp_path):
    data = fashion_mnist_dir()
    if data is None:
        pytest.skip("real Fashion-MNIST files not found (set NNCORE_DATA_DIR)")
    env = child_env(NNCORE_HOME=str(tmp_path / "home"))
    env.pop("NNCORE_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "nncore", "--epochs", "1", "--verbose", "0",
                           "--data-dir", str(data)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "training on 48,000 images, validating on 12,000, testing on 10,000" in out
    assert "trained 1 epochs on 48,000 images (12,000 held out for validation)" in out
    acc = float(out.split("test accuracy:")[1].split()[0])
    assert 0.75 < acc <= 1.0
    assert not (tmp_path / "home").exists()       # the files were read where they are


def test_offline_without_data_leaves_no_empty_cache_folder(tmp_path):
    env = child_env(NNCORE_HOME=str(tmp_path / "home"),
                    NNCORE_DATASET_MIRRORS="http://127.0.0.1:9/")   # refused at once
    env.pop("NNCORE_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "nncore", "--epochs", "1", "--verbose", "0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bundled" in proc.stderr                  # said it fell back to the sample
    assert "training on 1,600 images, validating on 400" in proc.stdout
    assert not (tmp_path / "home").exists(), list((tmp_path / "home").rglob("*"))


def test_failed_download_removes_only_the_folders_it_created(tmp_path, monkeypatch):
    from nncore.datasets import DatasetUnavailableError, fashion_mnist
    home = tmp_path / "home"
    (home / "keep").mkdir(parents=True)              # the user's own files stay
    monkeypatch.setenv("NNCORE_HOME", str(home))
    monkeypatch.delenv("NNCORE_DATA_DIR", raising=False)
    with pytest.raises(DatasetUnavailableError):
        fashion_mnist.load_data(mirrors=["http://127.0.0.1:9/"], progress=False)
    assert sorted(p.name for p in home.iterdir()) == ["keep"]
