# local/python:3.11: bookworm's interpreter is "externally managed" (PEP 668), so pip installs go into a
# virtual environment that is first on PATH, as /usr/local is in the official image.
python3.11 -m venv /opt/python
ln -s /opt/python/bin/python /usr/local/bin/python
/opt/python/bin/python -c "import sys; assert sys.version_info[:2] == (3, 11)"
