"""A headless "browser" for the tests, the program ``BROWSER`` names.

Python's ``webbrowser`` (what ``LoopbackCallback`` opens a URL with) runs the
program in ``$BROWSER`` with the URL as its argument and waits for it to exit,
as with a terminal browser. This one GETs the URL and follows every redirect,
as a user who is already signed in and clicks "Allow" would: the test
authorization server consents at once and redirects to the CLI's loopback
callback, which this request then reaches. It appends the URL it was given to
``$BROWSER_LOG`` when set, then ``answered STATUS 'page...'`` once the last
page came, and exits 0 when that was a 2xx.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main(url: str) -> int:
    log = os.environ.get("BROWSER_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(url + "\n")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    with opener.open(url, timeout=20) as response:
        page = response.read().decode("utf-8", "replace")
        status = response.status
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(f"answered {status} {page[:200]!r}\n")
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
