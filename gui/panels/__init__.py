"""The set-up panels: each edits one part of the open project and reports its fields' problems."""
