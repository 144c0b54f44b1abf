"""The markers of mallcore's hooks: ``@hookspec`` declares one, ``@hookimpl`` implements one."""

import pluggy

PROJECT = "mallcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
