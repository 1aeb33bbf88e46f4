"""Import: workflow files -> a reviewed plan -> an installed project.

``plan`` builds the ``ImportPlan``, ``decision`` holds what the user chose, ``search`` finds models
online, ``apply`` carries the plan out, ``manifest`` reads and writes the bundle manifests.
"""
