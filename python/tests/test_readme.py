"""The README's Python example runs as written (against a test cluster)."""

import os
import re

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def test_readme_python_example(cluster):
    with open(README) as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README.md has no ```python example"
    example = blocks[0]
    assert "127.0.0.1:7300" in example
    exec(compile(example.replace("127.0.0.1:7300", cluster.directory), "README.md", "exec"), {})
