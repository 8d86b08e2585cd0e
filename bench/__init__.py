"""The load benchmark (`make bench`, `python -m bench --help`)."""
