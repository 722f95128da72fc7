"""The HTML report: self-contained, its figures non-empty PNGs, and it renders in
a real headless browser (Debian's chromium, installed by `make test`) without
console errors."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import struct
import subprocess

import pytest

import pmengine as pm
from pmengine import risk
from pmengine.cli import main
from pmengine.present import report

from .conftest import EXAMPLES

IMAGE = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
PROBE = """<script>
console.error("probe-console-check");
window.addEventListener("load", () => {
  const sizes = [...document.images].map(
    (i) => (i.complete && i.naturalWidth > 0 ? i.naturalWidth + "x" + i.naturalHeight : "broken"));
  const p = document.createElement("pre");
  p.id = "probe";
  p.textContent = sizes.join(",");
  document.body.appendChild(p);
});
</script></body>"""


def liquidation_market(tmp_path) -> str:
    """The bundled market with every crypto group 5 % lower: near_liquidation is
    then in liquidation and the report shows a plan."""
    p = pm.Portfolio.from_json((EXAMPLES / "near_liquidation.json").read_text())
    m = pm.Market.from_json((EXAMPLES / "market.json").read_text())
    s = risk.Scenario("down", groups={"*": -0.05})
    path = tmp_path / "market.json"
    path.write_text(risk.apply_scenario(s, p, m, pm.Engine().params).to_json())
    return str(path)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    pytest.importorskip("matplotlib")
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "report.html"
    args = ["report", "--portfolio", str(EXAMPLES / "near_liquidation.json")]
    args += ["--market", liquidation_market(tmp), "--out", str(out)]
    assert main(args) == 0
    return out.read_text()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def test_report_is_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "http://" not in page and "https://" not in page
    for section in ("Risk matrix", "uniMMR against price moves", "Stress tests", "Margin usage"):
        assert section in page
    assert "Liquidation plan" in page and "sell " in page  # the account is in liquidation
    assert "Classic margin against portfolio margin" in page
    assert "every position margined alone" in page and "liquidation price BTCUSDT" in page


def test_report_images_are_non_empty_pngs(page):
    from matplotlib import image

    images = IMAGE.findall(page)
    # a risk matrix for BTC and ETH, uniMMR, margin usage, stresses
    assert len(images) == 5
    for b64 in images:
        data = base64.b64decode(b64)
        w, h = png_size(data)
        assert w > 100 and h > 100
        pixels = image.imread(io.BytesIO(data), format="png")
        assert pixels.std() > 0.05  # not a blank canvas


def test_report_renders_in_headless_chromium(page, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs it)")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE))
    r = subprocess.run(
        [
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    # the probe's own message proves console output is seen; nothing else may be there
    assert len(console) == 1 and "probe-console-check" in console[0], console
    sizes = re.search(r'<pre id="probe">([^<]*)</pre>', r.stdout)
    assert sizes is not None, r.stdout[-2000:]
    decoded = sizes.group(1).split(",")
    assert len(decoded) == 5
    for s in decoded:
        w, h = map(int, s.split("x"))
        assert w > 100 and h > 100


def test_missing_matplotlib_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(pm.MissingExtraError, match=r"pmengine\[plot\]"):
        report._pyplot()


def test_report_command_exit_code_without_matplotlib(monkeypatch, tmp_path, capsys):
    def missing():
        raise pm.MissingExtraError("pip install 'pmengine[plot]'")

    monkeypatch.setattr(report, "_pyplot", missing)
    args = ["report", "--portfolio", str(EXAMPLES / "short_straddle.json")]
    args += ["--market", str(EXAMPLES / "market.json"), "--out", str(tmp_path / "r.html")]
    assert main(args) == 1
    assert "pmengine[plot]" in capsys.readouterr().err
