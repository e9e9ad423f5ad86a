"""sinsim's version, written here only: ``sinsim.__version__``, ``pyproject.toml`` (dynamic),
``sinsim --version`` and ``summary.json`` read it."""

__version__ = "0.1.0"
