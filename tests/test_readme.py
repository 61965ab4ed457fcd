"""The README's usage example runs and is at most 10 lines; the user guide's k-subset example
runs."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "index.md"


def test_usage_example_runs():
    text = README.read_text()
    usage = text.split("## Usage", 1)[1]
    code = re.search(r"```python\n(.*?)```", usage, re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "27.9667, 124.0665,  27.9667" in done.stdout
    assert "tensor([180.]" in done.stdout


def test_k_subset_example_runs():
    section = GUIDE.read_text().split("**k-subsets.**", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert len(re.findall(r"\b50\.0*[,\]]", done.stdout)) == 4, done.stdout
    assert "torch.Size([16, 4])" in done.stdout
