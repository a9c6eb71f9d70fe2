"""Reliability studies: faults and hostile input, with figures (``make reliability``).

Each study is a module here exposing ``TITLE`` (its section heading in
``docs/reliability.md``) and ``run(full: bool, workdir: Path) -> str`` (the section's
Markdown: what was done, the figures, and the command that reproduces them). ``full``
runs the counts the report states; the fast subset runs in ``make test`` through the
study's ``test_*.py`` file, which calls the same code with small counts.
"""
