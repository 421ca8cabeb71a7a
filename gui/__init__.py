"""The Qt control panel for the live effect (PySide6, QtWidgets): python -m gui."""
