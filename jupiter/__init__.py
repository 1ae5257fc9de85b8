"""Jupiter bundle: dispersed-computing orchestrator."""
__version__ = "0.1.0"
