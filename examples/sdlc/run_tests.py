"""Runs the unit tests and writes a JUnit XML report (no pytest needed)."""
import sys, unittest, pathlib
from xml.sax.saxutils import quoteattr

sys.path.insert(0, "out/app")
suite = unittest.defaultTestLoader.discover("out/app", pattern="test_*.py")
cases = []

class Recorder(unittest.TextTestResult):
    def addSuccess(self, test):
        super().addSuccess(test); cases.append((test, None))
    def addFailure(self, test, err):
        super().addFailure(test, err); cases.append((test, ("failure", str(err[1]))))
    def addError(self, test, err):
        super().addError(test, err); cases.append((test, ("error", str(err[1]))))
    def addSkip(self, test, reason):
        super().addSkip(test, reason); cases.append((test, ("skipped", reason)))

result = unittest.TextTestRunner(resultclass=Recorder, verbosity=2).run(suite)
xml = ['<?xml version="1.0" encoding="utf-8"?>', f'<testsuite name="app" tests="{len(cases)}">']
for test, outcome in cases:
    cls, name = test.id().rsplit(".", 1)
    if outcome is None:
        xml.append(f'  <testcase classname={quoteattr(cls)} name={quoteattr(name)}/>')
    else:
        kind, msg = outcome
        xml.append(f'  <testcase classname={quoteattr(cls)} name={quoteattr(name)}><{kind} message={quoteattr(msg)}/></testcase>')
xml.append("</testsuite>")
pathlib.Path("out/reports").mkdir(parents=True, exist_ok=True)
pathlib.Path("out/reports/junit.xml").write_text("\n".join(xml) + "\n")
sys.exit(0 if result.wasSuccessful() else 1)
