"""One service per capability: what the console's panels and the CLI's commands call.

``core.workspace.Workspace`` opens the store and wires them; each service reaches the
store through the one :class:`~core.services.handle.StoreHandle`.
"""
