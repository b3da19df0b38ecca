"""The guide's ``worker.py``: reads JSON tasks from stdin, writes JSON results.

Each input line is a JSON object like ``{"task": "process", "data": ...}``;
the answer is ``{"status": "done", "task": ..., "result": ...}`` where the
result is the data upper-cased (str) or summed (list of numbers).
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        data = request.get("data")
        if isinstance(data, str):
            result: object = data.upper()
        elif isinstance(data, list):
            result = sum(data)
        else:
            result = data
        print(json.dumps({"status": "done", "task": request.get("task"), "result": result}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
