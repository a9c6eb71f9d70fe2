"""The plugins panel: every plugin found, what it contributes or why it failed, and a
reload from disk (``panel``), over a table of plugins (``model``)."""

from console.panels.plugins.panel import PluginsPanel

__all__ = ["PluginsPanel"]
