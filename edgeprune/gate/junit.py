"""JUnit XML for CI systems: one testsuite, one testcase per check, a failure element for each failed one."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..text import visible
from .checks import CheckResult, GateReport

SUITE_NAME = "edgeprune gate"


def junit_xml(report: GateReport, *, timestamp: str) -> bytes:
    counts = {"tests": str(len(report.checks)), "failures": str(len(report.failures)), "errors": "0", "skipped": "0"}
    suites = ET.Element("testsuites", name=SUITE_NAME, **counts)
    suite = ET.SubElement(suites, "testsuite", name=f"{SUITE_NAME}: {report.inputs.policy.path}", timestamp=timestamp,
                          **counts)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("policy", str(report.inputs.policy.path)), ("results", report.inputs.results_name),
                        ("baseline", report.inputs.baseline_name or "")):
        ET.SubElement(properties, "property", name=name, value=value)
    for check in report.checks:
        suite.append(testcase(check))
    for element in suites.iter():
        xml_safe(element)
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def testcase(check: CheckResult) -> ET.Element:
    case = ET.Element("testcase", classname=check.subject, name=check.budget, time="0")
    summary = f"measured {check.measured_text}, budget {check.limit_text} (set by {check.source})"
    if not check.passed:
        failure = ET.SubElement(case, "failure", message=f"{check.budget}: {summary}", type="BudgetExceeded")
        failure.text = check.note or summary
    ET.SubElement(case, "system-out").text = f"{summary}{f': {check.note}' if check.note else ''}"
    return case


def xml_safe(element: ET.Element) -> None:
    """Names and messages come from the results and the policy; ElementTree writes a character that XML 1.0
    forbids (most controls) as it is, and the file would no longer parse: show them as escapes instead. Attributes
    (names, one-line messages) stay on one line."""
    element.attrib = {name: visible(value) for name, value in element.attrib.items()}
    if element.text:
        element.text = visible(element.text, keep_lines=True)
