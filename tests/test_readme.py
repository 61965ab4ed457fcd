"""The README's usage example is a passing doctest of at most 10 statements; the user guide's
k-subset example runs."""

import doctest
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "index.md"


def test_usage_example_is_a_passing_doctest_of_at_most_10_statements():
    text = README.read_text()
    usage = text.split("## Usage", 1)[1]
    code = re.search(r"```python\n(.*?)```", usage, re.S).group(1)
    test = doctest.DocTestParser().get_doctest(code, {}, "README", str(README), 0)
    assert 5 <= len(test.examples) <= 10
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert "tensor([ 27.9667, 124.0665,  27.9667])" in code  # the exact mean is shown


def test_k_subset_example_runs():
    section = GUIDE.read_text().split("**k-subsets.**", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert len(re.findall(r"\b50\.0*[,\]]", done.stdout)) == 4, done.stdout
    assert "torch.Size([16, 4])" in done.stdout
