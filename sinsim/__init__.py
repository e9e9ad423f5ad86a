"""sinsim: a discrete-event simulator of federated learning over Space Information Networks."""

__version__ = "0.1.0"

__all__ = ["__version__"]
