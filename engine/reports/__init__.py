"""Reports: what Levelset tells people (the weekly report, level-drop alerts), as messages."""
