"""Writes the application and its tests (what an implementation agent would produce)."""
import pathlib

app = pathlib.Path("out/app")
app.mkdir(parents=True, exist_ok=True)
(app / "greeting.py").write_text('''
def greet(name):
    return f"Hello, {name}!"

def health():
    return "ok"
''')
(app / "test_greeting.py").write_text('''
import unittest
from greeting import greet, health

class GreetingTest(unittest.TestCase):
    def test_greet(self):
        self.assertEqual(greet("bgflow"), "Hello, bgflow!")

    def test_health(self):
        self.assertEqual(health(), "ok")
''')
print("implemented out/app/greeting.py with 2 tests")
