"""``diffhypergeom.stats`` loads on first use, and works without scipy."""

import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_stats_loads_on_first_use_without_scipy():
    code = textwrap.dedent("""
        import sys
        sys.modules["scipy"] = None  # any import of scipy now fails
        import diffhypergeom
        assert "diffhypergeom.stats" not in sys.modules
        result = diffhypergeom.stats.odds_ratio([[7, 15], [58, 472]])
        assert abs(float(result.statistic) - 3.7836687705553) < 1e-9
        try:
            diffhypergeom.nothing
        except AttributeError as err:
            assert "no attribute 'nothing'" in str(err)
        else:
            raise AssertionError("diffhypergeom.nothing did not raise")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
