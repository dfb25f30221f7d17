"""The HTML report in a real browser: headless Chromium (Debian's ``chromium`` package) loads
it offline, and a probe script reports what rendered: tables, decoded chart images, no
resource loaded from anywhere, no script error, the decision filter working."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from audit_data import UNTIL, busy_month, policies

from policykit.audit import AuditReport, audit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium package is not installed (apt-get install "
                             "chromium); .ci/run installs it"), pytest.mark.slow]  # a browser

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=10000"]

# Installed first thing in <head>: collects every error (script errors, and resources that
# fail to load, which fire non-bubbling error events seen in the capture phase).
HOOK = ("<script>window.__pkErrors=[];window.addEventListener('error',function(e){"
        "window.__pkErrors.push(String(e.message||(e.target&&(e.target.src||e.target.href))"
        "||'error'));},true);</script>")

PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var refs = Array.prototype.slice.call(document.querySelectorAll('[src],[href]'))
    .map(function (e) { return e.getAttribute('src') || e.getAttribute('href'); })
    .filter(function (u) { return !(u.indexOf('data:') === 0 || u.indexOf('#') === 0); });
  var box = document.querySelector('input.filter');
  var rows = document.querySelectorAll('#pk-decisions tbody tr');
  box.value = 'employee E7';
  box.dispatchEvent(new Event('input'));
  var shown = Array.prototype.filter.call(rows, function (r) {
    return r.style.display !== 'none'; }).length;
  var result = {
    images: imgs.map(function (i) { return {data: i.src.indexOf('data:image/png;base64,') === 0,
      complete: i.complete, width: i.naturalWidth, height: i.naturalHeight, alt: i.alt}; }),
    tables: Array.prototype.map.call(document.querySelectorAll('table'), function (t) {
      return {id: t.id, rows: t.querySelectorAll('tbody tr').length}; }),
    sections: Array.prototype.map.call(document.querySelectorAll('section h2'),
      function (h) { return h.textContent; }),
    resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
    external: refs,
    errors: window.__pkErrors,
    decisionRows: rows.length,
    filteredRows: shown,
    title: document.title
  };
  var pre = document.createElement('pre');
  pre.id = 'pk-probe';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=90)


@pytest.fixture(scope="module")
def report() -> AuditReport:
    log = busy_month()
    log.insert(20, {"id": "broken", "type": "staff.complaint",
                    "at": "2026-03-03T09:00:00+08:00", "employee_id": "E3",
                    "source": "customer", "severity": "terrible"})
    return audit(log, policies(), UNTIL)


def _probe(report: AuditReport, tmp_path: Path) -> dict[str, Any]:
    html = report.to_html()
    probed = html.replace("<head>", "<head>" + HOOK, 1).replace("</body>", PROBE + "</body>", 1)
    page = tmp_path / "report.html"
    page.write_text(probed, encoding="utf-8")
    proc = _chromium(tmp_path, "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="pk-probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the probe did not run; chromium said: {proc.stderr[-2000:]}"
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">") \
        .replace("&amp;", "&")
    result: dict[str, Any] = json.loads(text)
    return result


def test_report_renders_tables_and_decoded_charts_offline(report: AuditReport,
                                                          tmp_path: Path) -> None:
    result = _probe(report, tmp_path)
    assert result["errors"] == []
    assert result["external"] == [] and result["resources"] == []
    assert len(result["images"]) == 2
    for img in result["images"]:
        assert img["data"] and img["complete"]
        assert img["width"] > 400 and img["height"] > 150  # decoded, not a broken icon
    tables = {t["id"]: t["rows"] for t in result["tables"] if t["id"]}
    assert tables["pk-decisions"] == len(report.decisions) == result["decisionRows"]
    assert tables["pk-summary"] == 3
    assert tables["pk-quarantine"] == 1
    payroll_rows = [t["rows"] for t in result["tables"] if not t["id"]]
    assert 9 in payroll_rows  # eight employees and the total line
    assert result["sections"][:3] == ["Overview", "Charts", "Summary by policy, rule and kind"]
    e7 = sum(1 for d in report.decisions if d.subject.id == "E7")
    assert 0 < result["filteredRows"] == e7 < len(report.decisions)


def test_report_screenshot_is_a_real_page(report: AuditReport, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    report.to_html(page)
    shot = tmp_path / "report.png"
    _chromium(tmp_path, "--window-size=1280,2000", f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # a blank page compresses to a few kB
